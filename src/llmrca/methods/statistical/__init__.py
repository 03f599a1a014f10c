"""Statistical methods: random, NSigma, BARO, ε-Diagnosis."""
