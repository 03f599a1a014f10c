"""LLM-aware root-cause analysis: serving semantics, latency decomposition, accelerator signals."""

from llmrca.methods.llm.method import LlmRca, LlmRcaConfig

__all__ = ["LlmRca", "LlmRcaConfig"]
