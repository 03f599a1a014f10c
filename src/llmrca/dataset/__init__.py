"""On-disk datasets: read (every public layout), normalise, write, validate."""

from llmrca.dataset.io import Dataset, find_case_dirs, read_case, write_case
from llmrca.dataset.normalise import normalise_case

__all__ = ["Dataset", "find_case_dirs", "normalise_case", "read_case", "write_case"]
