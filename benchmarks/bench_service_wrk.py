"""Issue 13's service rows: `leadops serve` loaded by `wrk` from a separate process, against a bare Starlette ceiling.

    .venv/bin/python -m benchmarks.bench_service_wrk                # ~45 s: every row, 6 s per wrk run
    .venv/bin/python -m benchmarks.bench_service_wrk --seconds 3    # shorter

All in one run, on loopback only, stopping by itself:
  * `leadops serve` (its own processes: --processes, default one per core; signed bundle of the example
    policies, decision log on, --diagnostic-port);
  * wrk POSTing one lead at 32 and at 8 connections (req/s, p50, p99);
  * wrk POSTing batches of 100 leads at 8 connections (decisions/s = req/s x 100);
  * a bare Starlette endpoint on the same uvicorn options (engine/connections.uvicorn_options) in its own
    process, returning the very bytes of one single-lead answer: the framework's ceiling, at 32 and 8 connections;
  * /healthz latency on the main port and on --diagnostic-port, probed every 50 ms while wrk loads the decisions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servehelp import ServeProcess, free_port  # noqa: E402
from test_server import LEADS, NOW  # noqa: E402

from benchmarks.service_health import probe, serve_args  # noqa: E402

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def bare_server(port: int, body_file: str) -> None:
    """A Starlette app with one POST endpoint returning `body_file`'s bytes, on uvicorn with the service's options."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from engine.connections import ConnectionLimits, uvicorn_options

    body = Path(body_file).read_bytes()

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/decisions", endpoint, methods=["POST"]),
                            Route("/healthz", endpoint, methods=["GET"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(ConnectionLimits()))


def wrk(url: str, body: str, connections: int, seconds: float, workdir: Path) -> dict[str, float]:
    """Run wrk POSTing `body` to `url`: {'rps', 'p50', 'p99' (ms), 'non2xx', 'errors'}."""
    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body)}\n")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/sec, latency p50/p99 in ms, non-2xx and socket errors from wrk's --latency output."""
    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(rps.group(1)) if rps else float("nan"), "p50": latency("50"), "p99": latency("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": sum(int(g) for g in errors.groups()) if errors else 0}


def pct(values: list[float], q: float) -> float:
    return values[max(0, int(len(values) * q) - 1)] if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each wrk run")
    ap.add_argument("--workers", type=int, default=None, help="leadops serve --workers (default: its own)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                    help="leadops serve --processes (default: one per core)")
    ap.add_argument("--no-decision-log", action="store_true", help="serve without the audit log")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian package `wrk`)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        diag = free_port()
        command = serve_args(d, diag, decision_log=not args.no_decision_log)
        if args.workers:
            command += ["--workers", str(args.workers)]
        if args.processes > 1:
            command += ["--processes", str(args.processes)]
        single = json.dumps({"lead": LEADS[0], "now": NOW})
        batch = json.dumps({"leads": [{**LEADS[i % len(LEADS)], "id": f"L-{i}"} for i in range(100)], "now": NOW})
        rows: dict[str, object] = {"processes": args.processes}
        with ServeProcess(command, d) as srv:
            url = srv.url + "/v1/decisions"
            answer = httpx.post(url, content=single, headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
            checked = httpx.post(url, content=batch, headers={"content-type": "application/json"}).json()
            assert checked["summary"] == {"leads": 100, "decisions": 100, "errors": 0}, checked["summary"]
            (d / "body.json").write_bytes(answer.content)
            rows["body_bytes"] = len(answer.content)
            rows["single_c8"] = wrk(url, single, 8, args.seconds, d)
            end = time.monotonic() + args.seconds
            health: dict[str, tuple[list[float], int]] = {}
            probers = [threading.Thread(target=lambda n=n, b=b: health.__setitem__(n, probe(b, end)))
                       for n, b in (("main", srv.url), ("diagnostic", f"http://127.0.0.1:{diag}"))]
            for p in probers:
                p.start()
            rows["single_c32"] = wrk(url, single, 32, args.seconds, d)
            for p in probers:
                p.join()
            rows["healthz"] = {n: {"probes": len(v), "failed": failed, "p50": statistics.median(v) * 1000,
                                   "p99": pct(v, 0.99) * 1000} for n, (v, failed) in health.items()}
            batch100 = wrk(url, batch, 8, args.seconds, d)
            batch100["decisions_per_s"] = batch100["rps"] * 100
            rows["batch100_c8"] = batch100
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", "from benchmarks.bench_service_wrk import bare_server as b; "
                                 f"b({port}, {str(d / 'body.json')!r})"], cwd=ROOT)
        try:
            bare_url = f"http://127.0.0.1:{port}/v1/decisions"
            for _ in range(200):
                try:
                    httpx.post(bare_url, content=single, timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            rows["bare_c32"] = wrk(bare_url, single, 32, args.seconds, d)
            rows["bare_c8"] = wrk(bare_url, single, 8, args.seconds, d)
        finally:
            bare.terminate()
            bare.wait(10)
    report(rows, args.format)
    return 0


def report(rows: dict[str, object], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    print(f"answer body: {rows['body_bytes']} bytes; leadops serve --processes {rows['processes']}")
    for name in ("single_c32", "single_c8", "batch100_c8", "bare_c32", "bare_c8"):
        r = rows[name]
        extra = f", {r['decisions_per_s']:,.0f} decisions/s" if "decisions_per_s" in r else ""
        print(f"{name:12} {r['rps']:>9,.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
              f"non-2xx {r['non2xx']}  socket errors {r['errors']}{extra}")
    for name, h in rows["healthz"].items():
        print(f"/healthz on the {name} port under wrk -c32: {h['probes']} probes, p50 {h['p50']:.1f} ms, "
              f"p99 {h['p99']:.1f} ms, failed {h['failed']}")


if __name__ == "__main__":
    sys.exit(main())
