"""Open-loop streaming load for OpenAI-compatible servers (vLLM, Ray Serve LLM, ...).

>>> from llmrca.load import run_load
>>> report = run_load("http://127.0.0.1:8000", qps=5, duration_s=60, model="m")  # doctest: +SKIP
>>> print(report.format())  # doctest: +SKIP

See docs/load.md.
"""

from llmrca.load.generator import (
    LoadReport,
    LoadRunner,
    RemoteTargetRefused,
    RequestRecord,
    chat_url,
    is_loopback_url,
    run_load,
)
from llmrca.load.schedule import Schedule, make_schedule, synth_prompt

__all__ = [
    "LoadReport",
    "LoadRunner",
    "RemoteTargetRefused",
    "RequestRecord",
    "Schedule",
    "chat_url",
    "is_loopback_url",
    "make_schedule",
    "run_load",
    "synth_prompt",
]
