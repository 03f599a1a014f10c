"""On-disk datasets: read, write, validate; RCAEval-compatible layout."""

from llmrca.dataset.io import Dataset, find_case_dirs, read_case, write_case

__all__ = ["Dataset", "find_case_dirs", "read_case", "write_case"]
