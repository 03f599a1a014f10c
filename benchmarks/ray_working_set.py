"""How much cAdvisor's working set of a real Ray Serve node moves between 30-s scrapes.

The companion of ``working_set_drops.py`` (nginx and a small Python server) for a Ray pod: the paper's
exporter reads memory as ``rate(container_memory_working_set_bytes[1m])``, so a working set that falls
between two scrapes reads as a counter reset (docs/simulator.md).  This starts a local Ray cluster as a
Ray pod runs it (GCS, raylet, dashboard and its agents, the Serve controller, an HTTP proxy and one
replica) inside one cgroup-v1 memory group, deploys a replica that answers an OpenAI-style completion the
way a small engine front end does (parses the JSON, "tokenizes" the prompt, waits ``--decode-s`` per
request, returns the generated text), sends 5 requests/s over loopback for ``DURATION`` seconds
(default 360), samples ``usage - total_inactive_file`` (cAdvisor's working set) every second and prints
the share of 30-s scrape pairs (every phase) in which it fell and the spread of the 30-s change.

Needs root, cgroup v1 (PROTOCOL.md §5) and Ray Serve (``pip install "ray[serve]"``).  Everything runs in
its own process group and cgroup; on exit (also on SIGTERM / Ctrl-C, a second one included) the driver is asked
to shut Ray down (its group is killed after 10 s), any process still in the cgroup is killed by its membership of
that cgroup, the cgroup and Ray's session logs are removed; the samples stay in the printed folder.

    python benchmarks/ray_working_set.py [DURATION] [--decode-s 1.0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CG = Path("/sys/fs/cgroup/memory")
PORT = 18300

DRIVER = """
import asyncio, json, random, signal, sys, time
import ray
from ray import serve
from starlette.requests import Request

ray.init(num_cpus=2, object_store_memory=100 * 2**20, _temp_dir=sys.argv[1], include_dashboard=True)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})
DECODE_S = float(sys.argv[3])

@serve.deployment(max_ongoing_requests=32)
class Completions:
    async def __call__(self, request: Request):
        body = await request.json()
        prompt = body.get("prompt", "")
        ids = [hash(w) % 32000 for w in prompt.split()]  # the prompt's token ids
        await asyncio.sleep(DECODE_S)  # the engine decodes
        out = [random.randrange(32000) for _ in range(int(body.get("max_tokens", 128)))]
        text = " ".join(f"tok{t}" for t in out)
        return {"id": f"cmpl-{random.getrandbits(64):x}", "object": "text_completion", "created": int(time.time()),
                "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": len(out)}}

serve.run(Completions.bind(), route_prefix="/v1/completions")
print("ready", flush=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # wait for them instead of dying on them
signal.sigwait({signal.SIGTERM, signal.SIGINT})
serve.shutdown()
ray.shutdown()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("duration", nargs="?", type=float, default=360.0, help="seconds of load (default 360)")
    ap.add_argument("--decode-s", type=float, default=1.0, help="seconds each request waits in the replica")
    ap.add_argument("--rate", type=float, default=5.0, help="requests per second")
    a = ap.parse_args()
    if a.duration < 60:
        print(f"note: {a.duration:g} s holds fewer than two 30-s scrape pairs per phase: the shares below will not mean much")
    d = Path(tempfile.mkdtemp(prefix="raywss-"))
    group = CG / f"wsprobe-ray-{os.getpid()}"
    group.mkdir()
    (d / "driver.py").write_text(DRIVER)
    driver: subprocess.Popen[bytes] | None = None

    def cleanup() -> None:
        # a second Ctrl-C (or a `timeout` passing one on) must not stop the cleanup half way
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if driver is not None and driver.poll() is None:
            driver.send_signal(signal.SIGTERM)  # the driver alone: it shuts Serve and Ray down while the GCS still runs
            try:
                driver.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(driver.pid, signal.SIGKILL)
        for _ in range(20):  # Ray's daemons start their own sessions: stop them by their membership of our cgroup
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        try:
            group.rmdir()
        except OSError as e:
            print("cgroup left:", group, e)
        shutil.rmtree(d / "ray", ignore_errors=True)  # Ray's session logs; samples.json and driver.log stay

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        driver = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {group}/cgroup.procs; exec "$@"', "sh",
             sys.executable, str(d / "driver.py"), str(d / "ray"), str(PORT), str(a.decode_s)],
            start_new_session=True, stdout=subprocess.PIPE, stderr=open(d / "driver.log", "wb"),
        )  # fmt: skip
        assert driver.stdout is not None
        line = driver.stdout.readline().decode()
        if "ready" not in line:
            raise SystemExit(f"the Ray driver did not start (log: {d / 'driver.log'})")
        stop_ev = threading.Event()
        sent = [0, 0]
        req = json.dumps({"model": "m", "prompt": "the quick brown fox " * 40, "max_tokens": 128}).encode()

        def one() -> None:
            try:
                r = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/completions", data=req, headers={"Content-Type": "application/json"})
                urllib.request.urlopen(r, timeout=30).read()
                sent[0] += 1
            except Exception:
                sent[1] += 1

        def load() -> None:
            t0, i = time.time(), 0
            while not stop_ev.is_set():
                i += 1
                threading.Thread(target=one, daemon=True).start()
                time.sleep(max(0.0, t0 + i / a.rate - time.time()))

        time.sleep(5.0)
        th = threading.Thread(target=load, daemon=True)
        th.start()
        rows = []
        t0 = time.time()
        while time.time() - t0 < a.duration:
            st = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
            u = int((group / "memory.usage_in_bytes").read_text())
            rows.append({"t": round(time.time() - t0, 2), "usage": u, "inactive_file": int(st["total_inactive_file"]),
                         "active_file": int(st["total_active_file"]), "rss": int(st["total_rss"])})  # fmt: skip
            time.sleep(1.0)
        stop_ev.set()
        th.join(6)
        (d / "samples.json").write_text(json.dumps(rows))
        print(f"requests ok / failed: {sent[0]} / {sent[1]}; samples in {d / 'samples.json'}")
        ws = [r["usage"] - r["inactive_file"] for r in rows]
        shares, changes = [], []
        for ph in range(30):
            s = ws[ph::30]
            pairs = list(itertools.pairwise(s))
            shares.append(sum(b < a for a, b in pairs) / max(1, len(pairs)))
            changes += [b - a for a, b in pairs]
        print(
            f"ray node working set {ws[0] / 2**20:.1f} -> {ws[-1] / 2**20:.1f} MiB; 30-s scrape pairs with a fall: "
            f"mean {sum(shares) / len(shares):.2f} (over the 30 phases {min(shares):.2f}-{max(shares):.2f}); "
            f"30-s change: median {statistics.median(changes) / 2**10:.0f} KiB, std {statistics.pstdev(changes) / 2**10:.0f} KiB"
        )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
