"""How often cAdvisor's working set of a real nginx and a real Python HTTP server falls between 30-s scrapes.

The paper's exporter reads memory as ``rate(container_memory_working_set_bytes[1m])``: a working set that
falls between two scrapes reads as a counter reset (docs/simulator.md).  This starts nginx (proxying to a
small Python server that allocates per request and logs a line) in two cgroup-v1 memory groups, tails
their logs as Fluent Bit would, sends 5 requests/s over loopback for ``DURATION`` seconds (default 360),
samples ``usage - total_inactive_file`` (cAdvisor's working set) every second and prints, per group, the
share of 30-s scrape pairs (every phase) in which it fell.  Needs root, nginx and cgroup v1
(PROTOCOL.md §5); everything started runs in its own process group and is stopped, and the groups are
removed, on exit.

    python benchmarks/working_set_drops.py [DURATION]
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

D = Path(tempfile.mkdtemp(prefix="wsdrops-"))
CG = Path("/sys/fs/cgroup/memory")
DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 360
LOG = D / "logs"
LOG.mkdir(exist_ok=True)
server = D / "server.py"
server.write_text("""
import http.server, socketserver, random, sys
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        toks = [("tok%d " % random.randrange(50000)) * 4 for _ in range(256)]  # per-request allocations
        body = "".join(toks).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
        log.write("%s %s %d\\n" % (self.client_address[0], self.path, len(body)))
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")
conf = D / "nginx.conf"
conf.write_text(f"""
worker_processes 2; pid {D}/nginx.pid; error_log {LOG}/error.log;
events {{ worker_connections 256; }}
http {{ access_log {LOG}/access.log; client_body_temp_path {D}/tmp;  proxy_temp_path {D}/tmp;
  fastcgi_temp_path {D}/tmp; uwsgi_temp_path {D}/tmp; scgi_temp_path {D}/tmp;
  server {{ listen 127.0.0.1:18080; location / {{ proxy_pass http://127.0.0.1:18081; }} }} }}
""")
(D / "tmp").mkdir(exist_ok=True)
groups = {"nginx": CG / "wsprobe-nginx", "python": CG / "wsprobe-python"}
for g in groups.values():
    g.mkdir(exist_ok=True)
procs = []


def start(group, cmd):
    p = subprocess.Popen(
        ["sh", "-c", f'echo $$ > {groups[group]}/cgroup.procs; exec "$@"', "sh", *cmd],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(p)
    return p


def stop():
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    time.sleep(0.5)
    for g in groups.values():
        try:
            g.rmdir()
        except OSError as e:
            print("cgroup left:", g, e)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on a kill too
try:
    start("python", [sys.executable, str(server), "18081", str(LOG / "server.log")])
    start("nginx", ["nginx", "-c", str(conf), "-g", "daemon off;"])
    tail = subprocess.Popen(
        ["tail", "-F", str(LOG / "access.log"), str(LOG / "server.log")],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(tail)
    time.sleep(1.5)
    stop_ev = threading.Event()
    sent = [0, 0]

    def load():
        t0 = time.time()
        i = 0
        while not stop_ev.is_set():
            i += 1
            try:
                urllib.request.urlopen("http://127.0.0.1:18080/v1/completions", timeout=5).read()
                sent[0] += 1
            except Exception:
                sent[1] += 1
            time.sleep(max(0.0, t0 + i / 5.0 - time.time()))

    th = threading.Thread(target=load, daemon=True)
    th.start()
    rows = []
    t0 = time.time()
    while time.time() - t0 < DUR:
        row = {"t": round(time.time() - t0, 2)}
        for k, g in groups.items():
            st = dict(line.split() for line in (g / "memory.stat").read_text().splitlines())
            u = int((g / "memory.usage_in_bytes").read_text())
            row[k] = {
                "usage": u,
                "inactive_file": int(st["total_inactive_file"]),
                "active_file": int(st["total_active_file"]),
                "rss": int(st["total_rss"]),
            }
        rows.append(row)
        time.sleep(1.0)
    stop_ev.set()
    th.join(6)
    (D / "samples.json").write_text(json.dumps(rows))
    print(f"requests ok / failed: {sent[0]} / {sent[1]}; samples in {D / 'samples.json'}")
    for k in groups:
        ws = [r[k]["usage"] - r[k]["inactive_file"] for r in rows]
        shares = []
        for ph in range(30):
            s = ws[ph::30]
            pairs = list(itertools.pairwise(s))
            shares.append(sum(b < a for a, b in pairs) / max(1, len(pairs)))
        print(
            f"{k:7s} working set {ws[0] / 2**20:.1f} -> {ws[-1] / 2**20:.1f} MiB; 30-s scrape pairs with a fall: "
            f"mean {sum(shares) / len(shares):.2f} (over the 30 phases {min(shares):.2f}-{max(shares):.2f})"
        )
finally:
    stop()
