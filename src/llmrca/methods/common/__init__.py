"""Helpers shared by several methods: anomaly scoring, log / trace series, anomalous edges.

Each concern lives in one module so every method computes it the same way.
"""
