"""Evaluation of RCA methods: AC@k / Avg@k, the parallel runner, Table 1."""

from llmrca.evaluate.runner import EvaluationError, EvaluationResult, run_evaluation

__all__ = ["EvaluationError", "EvaluationResult", "run_evaluation"]
