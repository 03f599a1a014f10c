"""Other names of the catalogue's series: exporter versions and prefixes.

Used by :mod:`llmrca.collect` (alternative series to query) and by
:mod:`llmrca.telemetry.vocabulary` (column names that mean the same signal).
"""

from __future__ import annotations
