"""The local testbed: the paper's stack as real processes on this machine (see docs/local-testbed.md)."""

from llmrca.testbed.local.stack import DEFAULT_RUN_DIR, LocalTestbed, LocalTestbedConfig, State, TestbedError, down

__all__ = ["DEFAULT_RUN_DIR", "LocalTestbed", "LocalTestbedConfig", "State", "TestbedError", "down"]
