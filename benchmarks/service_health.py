"""/healthz latency while `leadops serve` is saturated: the service's "health answers under any load" goal.

    .venv/bin/python -m benchmarks.service_health              # 15 s: batches of 1,000 explained leads + wrk -c500
    .venv/bin/python -m benchmarks.service_health --seconds 5  # shorter

Starts a real `leadops serve` process on loopback with a signed bundle of the example policies, then at once:
  * `--batch-clients` Python clients posting 1,000-lead explain batches in a loop (the CPU-heavy case: each
    takes ~0.5-1 s of one core's work);
  * `wrk -c500` posting single-lead decisions (when wrk is installed; skipped otherwise);
  * one prober requesting /healthz every 50 ms and timing it.
Prints the /healthz latency p50/p99/max and the decision status counts. Goal: /healthz p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servehelp import ServeProcess, free_port  # noqa: E402
from test_server import LEADS, NOW, signed_bundle  # noqa: E402

from engine.signing import generate_keypair  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--batch-clients", type=int, default=4)
    ap.add_argument("--connections", type=int, default=500, help="wrk connections")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        diag = free_port()
        with ServeProcess(serve_args(d, diag), d) as srv:
            return run_load(srv.url, f"http://127.0.0.1:{diag}", d, args)


def serve_args(d: Path, diagnostic_port: int, decision_log: bool = True) -> list[str]:
    """`leadops serve` arguments for a signed bundle of the example policies written into `d` (keys, state there)."""
    keys = generate_keypair(d, "bench")
    bundle = d / "b.tar.gz"
    bundle.write_bytes(signed_bundle(keys, "rev-bench", 1))
    args = ["--bundle", str(bundle), "--key", str(keys.public_path), "--state-dir", str(d / "state"),
            "--diagnostic-port", str(diagnostic_port)]
    return args + ["--decision-log", str(d / "decisions.jsonl")] if decision_log else args


def probe(base: str, end: float) -> tuple[list[float], int]:
    """Time GET /healthz every 50 ms until `end`: (latencies, failures)."""
    latencies, failures = [], 0
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            failures += not ok
            time.sleep(0.05)
    return sorted(latencies), failures


def summary(name: str, latencies: list[float], failures: int) -> str:
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return (f"/healthz on the {name}: {len(latencies)} probes, p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms, failed {failures}")


def run_load(url: str, diag_url: str, d: Path, args: argparse.Namespace) -> int:
    stop = threading.Event()
    statuses: Counter[str] = Counter()
    batch = json.dumps({"leads": [{**LEADS[i % 3], "id": f"L-{i}"} for i in range(1000)], "now": NOW,
                        "explain": True})

    def batches() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/decisions", content=batch, headers={"content-type": "application/json"})
                    statuses[f"batch {r.status_code}"] += 1
                except httpx.HTTPError as exc:
                    statuses[f"batch {type(exc).__name__}"] += 1

    wrk = None
    if shutil.which("wrk"):
        script = d / "post.lua"
        body = json.dumps({"lead": LEADS[0], "now": NOW})
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        wrk = subprocess.Popen(["wrk", "-t2", f"-c{args.connections}", f"-d{int(args.seconds)}s", "-s", str(script),
                                url + "/v1/decisions"], stdout=subprocess.PIPE, text=True)
    workers = [threading.Thread(target=batches) for _ in range(args.batch_clients)]
    for w in workers:
        w.start()
    time.sleep(1.0)  # let the load build up
    end = time.monotonic() + args.seconds - 1.0
    results: dict[str, tuple[list[float], int]] = {}
    probers = [threading.Thread(target=lambda n=n, b=b: results.__setitem__(n, probe(b, end)))
               for n, b in (("main port", url), ("diagnostic port", diag_url))]
    for p in probers:
        p.start()
    for p in probers:
        p.join()
    stop.set()
    for w in workers:
        w.join()
    wrk_out = wrk.communicate()[0] if wrk else "wrk not installed"
    for name, (latencies, failures) in results.items():
        print(summary(name, latencies, failures))
    print(f"decision batches (1,000 explained leads each): {dict(statuses)}")
    print("wrk single-lead decisions:", " | ".join(line.strip() for line in wrk_out.splitlines()
                                                   if "Requests/sec" in line or "Non-2xx" in line or "Socket" in line
                                                   or "Latency" in line))
    failures = sum(f for _, f in results.values())
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
