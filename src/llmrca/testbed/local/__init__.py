"""The local testbed: the paper's stack as real processes on this machine (see docs/local-testbed.md).

Entry points live in :mod:`llmrca.testbed.local.stack` (kept out of this module so
that ``python -m llmrca.testbed.local.<process>`` does not import the whole stack).
"""
