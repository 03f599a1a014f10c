"""Topology-based methods over the case's call graph: MicroRCA, Microscope, MonitorRank."""
