"""Reports of an evaluation: summary.csv, Table 1 (md/csv/tex), figures."""

from llmrca.report.build import Report, write_report

__all__ = ["Report", "write_report"]
