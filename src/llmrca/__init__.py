"""llmrca: root-cause analysis for LLM inference deployments, and its benchmark."""

__version__ = "0.1.0"
