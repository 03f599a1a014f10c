"""Trace-based methods over the case's spans: MicroRank, TraceRCA."""
