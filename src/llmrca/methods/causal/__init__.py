"""Causal-inference RCA methods: CIRCA, RCD, CausalRCA, CausalAI (and MicroCause)."""
