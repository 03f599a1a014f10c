"""The misattribution figure: drawn by :mod:`llmrca.evaluate.figures` (re-exported here)."""

from llmrca.evaluate.figures import misattribution_figure

__all__ = ["misattribution_figure"]
