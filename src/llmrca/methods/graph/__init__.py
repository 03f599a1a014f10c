"""Graph-based RCA: causal-graph discovery (PC, FCI, Granger, LiNGAM, PCMCI) × graph heads.

``preprocess`` turns a Case into a matrix, ``discovery`` builds a causal
graph over its columns, ``heads`` ranks the graph's nodes; ``methods``
composes them into the registered methods.
"""
