"""A small client of the Prometheus HTTP API (``/api/v1/query``, ``query_range``, ``targets``).

It works against Prometheus, Thanos Query, VictoriaMetrics and Mimir, which
serve the same API.  Errors name the query and what Prometheus said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or rejected a query."""


@dataclass(frozen=True)
class Series:
    """One result series: its labels and its samples (epoch s, float; NaN kept)."""

    labels: dict[str, str]
    times: np.ndarray
    values: np.ndarray


def _float(v: str) -> float:
    # Prometheus renders NaN/+Inf/-Inf as strings; float() parses all three.
    return float(v)


class PromClient:
    """``PromClient("http://127.0.0.1:9090")``; thread-safe (one httpx.Client)."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PromClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health ------------------------------------------------------------------
    def healthy(self) -> bool:
        """``/-/healthy`` answers 200 (False if unreachable)."""
        try:
            return self._http.get(self.url + "/-/healthy").status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        """``/-/ready`` answers 200: the TSDB is loaded and queries work."""
        try:
            return self._http.get(self.url + "/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    # -- API ------------------------------------------------------------------------
    def _api(self, path: str, params: dict[str, Any], what: str) -> Any:
        try:
            r = self._http.post(self.url + path, data=params)
        except httpx.HTTPError as e:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url} ({e!r}) for {what}; is it running and is the URL right?"
            ) from e
        try:
            body = r.json()
        except ValueError:
            raise PrometheusError(self._not_prometheus(path, r)) from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus rejected {what}: {body.get('errorType', r.status_code)}: {body.get('error', r.text[:200])}"
            )
        return body["data"]

    def _not_prometheus(self, path: str, r: httpx.Response) -> str:
        """What to tell about an answer that is not the HTTP API's JSON (another server, a login page, a path
        under the base URL): the status, the content type and the first line of the body."""
        from urllib.parse import urlparse

        ctype = r.headers.get("content-type", "").split(";")[0] or "no content type"
        first = next((ln.strip() for ln in r.text.splitlines() if ln.strip()), "")[:120]
        sub = urlparse(self.url).path.rstrip("/")
        tail = next((t for t in ("/api/v1", "/api", "/graph", "/query") if sub.endswith(t)), None)
        fix = (f"give the base URL without {tail!r}" if tail else
               "give Prometheus' base URL, e.g. http://127.0.0.1:9090 (with its path prefix when it is served under one)")
        return (f"{self.url} does not answer as Prometheus: {path} answered HTTP {r.status_code} with {ctype}, not the "
                f"API's JSON (it begins {first!r}); {fix}")

    def query(self, promql: str, time: float | None = None) -> list[Series]:
        """Instant query at ``time`` (now if None); one sample per series."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = f"{time:.3f}"
        data = self._api("/api/v1/query", params, f"query {promql!r}")
        if data["resultType"] == "scalar":
            t, v = data["result"]
            return [Series({}, np.array([float(t)]), np.array([_float(v)]))]
        if data["resultType"] != "vector":
            raise PrometheusError(f"query {promql!r} returned a {data['resultType']}, expected an instant vector")
        return [
            Series(dict(s["metric"]), np.array([float(s["value"][0])]), np.array([_float(s["value"][1])])) for s in data["result"]
        ]

    def samples(self, selector: str, at: float, lookback_s: float) -> list[Series]:
        """The raw samples of the series ``{selector}`` matches in ``(at - lookback_s, at]``, with their own
        timestamps (an instant query of the range vector ``{selector}[lookback]``)."""
        params = {"query": f"{{{selector}}}[{max(1, int(lookback_s))}s]", "time": f"{at:.3f}"}
        data = self._api("/api/v1/query", params, f"samples of {{{selector}}}")
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"{self.url}: a range vector query returned a {data.get('resultType')}, expected a matrix")
        return [
            Series(dict(s["metric"]), np.array([float(t) for t, _ in s["values"]]), np.array([_float(v) for _, v in s["values"]]))
            for s in data["result"]
        ]

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[Series]:
        """Range query: samples at ``start + k*step`` up to ``end`` where the query has a value."""
        if not (math.isfinite(start) and math.isfinite(end) and end >= start):
            raise ValueError(f"bad time range {start} .. {end}; give epoch seconds with start <= end")
        if (end - start) / step_s >= 11000:
            # Prometheus refuses more than 11,000 points per series; fail before asking, with the fix
            raise ValueError(
                f"range {end - start:.0f} s at step {step_s} s is more than 11,000 points; use a larger step or split the range"
            )
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"}
        data = self._api("/api/v1/query_range", params, f"query_range {promql!r}")
        out = []
        for s in data["result"]:
            vals = s.get("values", [])
            out.append(
                Series(
                    dict(s["metric"]),
                    np.array([float(t) for t, _ in vals]),
                    np.array([_float(v) for _, v in vals]),
                )
            )
        return out

    def series(self, match: str | list[str], start: float, end: float) -> list[dict[str, str]]:
        """Label sets (``__name__`` included) of the series matching ``match`` with samples in ``[start, end]`` (``/api/v1/series``)."""
        matches = [match] if isinstance(match, str) else list(match)
        params: dict[str, Any] = {"match[]": matches, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        data = self._api("/api/v1/series", params, f"series {matches!r}")
        if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
            raise PrometheusError(f"{self.url}/api/v1/series answered {str(data)[:200]!r}, expected a list of label sets")
        return [dict(s) for s in data]

    def label_values(self, label: str, start: float, end: float, match: str | None = None) -> list[str]:
        """Values of ``label`` over the series with samples in ``[start, end]`` (``/api/v1/label/<label>/values``),
        of the series ``match`` selects when given (``match[]``, Prometheus >= 2.24).

        ``label_values("__name__", ...)`` lists the metric names Prometheus holds in the window.
        """
        params: dict[str, Any] = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
        if match is not None:
            params["match[]"] = match
        try:
            r = self._http.get(f"{self.url}/api/v1/label/{label}/values", params=params)
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise PrometheusError(f"cannot read the values of label {label!r} from {self.url}: {e!r}") from e
        if body.get("status") != "success" or not isinstance(body.get("data"), list):
            raise PrometheusError(f"Prometheus at {self.url} refused the values of label {label!r}: {body.get('error', body)!r}"[:300])
        return [str(v) for v in body["data"]]

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with ``health``, ``lastError``, ``labels``, ``scrapeUrl``."""
        try:
            r = self._http.get(self.url + "/api/v1/targets", params={"state": "active"})
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise PrometheusError(f"cannot read targets from {self.url}: {e!r}") from e
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url} refused the targets request: {body.get('error')}")
        return list(body["data"].get("activeTargets", []))
