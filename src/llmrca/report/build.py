"""The evaluation's own outputs (summary.csv, status.csv, Table 1, misattribution): :mod:`llmrca.evaluate.outputs`, re-exported."""

from llmrca.evaluate.outputs import Report, ReportError, _latest_session, select_records, write_report

__all__ = ["Report", "ReportError", "_latest_session", "select_records", "write_report"]
