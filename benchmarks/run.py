"""leadops benchmarks: one command, every figure, ratios to a hand-written baseline measured in the same run.

    .venv/bin/python -m benchmarks.run                 # everything (batch and diff: 1,000,000 leads)
    .venv/bin/python -m benchmarks.run --quick         # smaller samples (batch and diff: 100,000 leads)
    .venv/bin/python -m benchmarks.run --json out.json # also write the raw figures

Not part of the test suite. Sections:
  load       policy load + validate + compile: example set (fresh process / warm), x10 set, 1,000-rule set
  decide     one core, decisions/s: hand-written Python (verified identical first), leadops score+stage+route,
             full decision (with SLAs), with --explain; validation share; x10 and 1,000-rule sets
  simpleeval the policy's expressions per lead: leadops compiled vs simpleeval (pre-parsed / re-parsed)
  scenarios  scenario replay rate (benchmarks/bench_scenarios.py's generator), fresh process: scenarios/s, peak RSS
  memory     tracemalloc peak over 20,000 in-process decisions and the process's max RSS
  service    BackgroundServer on 127.0.0.1 with a signed bundle; 8 concurrent clients for 10 s (--quick 5 s):
             requests/s, p50, p99, errors, server peak RSS; single lead and batch of 100
  batch      a bare JSON round trip (json.loads + json.dumps per line; 1 and N processes) and
             `leadops eval leads.jsonl` on every core vs --jobs 1: leads/s, wall time, peak RSS, ratio
  diff       `leadops diff` between two commits of a temporary git repo over the same leads: wall, leads/s, peak RSS
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NOW_TEXT = "2026-11-23T09:00:00+10:00"
NOW = datetime.fromisoformat(NOW_TEXT)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ------------------------------------------------------------------------------------------------- load

_FRESH_LOAD = """
import sys, time
t0 = time.perf_counter()
import engine
from engine.sources import read_directory
t1 = time.perf_counter()
if sys.argv[2] == "warm-holidays":
    import holidays; holidays.country_holidays("AU", subdiv="QLD", years=2026)
files, root = read_directory(sys.argv[1])
t2 = time.perf_counter()
engine.load_policy_files(files, root, revision="bench")
t3 = time.perf_counter()
print((t1 - t0) * 1e3, (t3 - t2) * 1e3)
"""


def fresh_load_ms(policies: Path, mode: str = "cold", runs: int = 3) -> tuple[float, float]:
    """(import engine ms, first load_policy_files ms) in a fresh interpreter; median of `runs`."""
    imports, loads = [], []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", _FRESH_LOAD, str(policies), mode], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.split()
        imports.append(float(out[0]))
        loads.append(float(out[1]))
    return statistics.median(imports), statistics.median(loads)


def warm_load_ms(policies: Path, runs: int = 7) -> float:
    import engine
    from engine.sources import read_directory

    files, root = read_directory(policies)
    engine.load_policy_files(files, root, revision="bench")
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        engine.load_policy_files(files, root, revision="bench")
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def section_load(results: dict[str, Any], quick: bool) -> None:
    from benchmarks.policies import rule_count, rules_1000_dir, scaled_policy_dir

    import engine

    sets = {"example": ROOT / "policies", "x10": scaled_policy_dir(10), "rules1000": rules_1000_dir()}
    out: dict[str, Any] = {}
    for name, path in sets.items():
        log(f"load: {name}")
        ps = engine.load_policies(path, revision="bench")
        imp, cold = fresh_load_ms(path, "cold", 3 if not quick else 1)
        _, no_holidays = fresh_load_ms(path, "warm-holidays", 3 if not quick else 1)
        out[name] = {"rules": rule_count(ps), "import_engine_ms": imp, "first_load_ms": cold,
                     "first_load_holidays_imported_ms": no_holidays, "warm_load_ms": warm_load_ms(path)}
    results["load"] = out


# ----------------------------------------------------------------------------------------------- decide


def activity_index_of(ps: Any) -> Callable[[Any, datetime], Any]:
    """`activities_by_type` as the policy set's decisions build it: only the kinds it counts (a baseline tree
    that predates `PolicySet.activity_kinds` indexes every type)."""
    from engine.scoring import activities_by_type

    kinds = getattr(ps, "activity_kinds", None)
    return activities_by_type if kinds is None else lambda view, now: activities_by_type(view, now, kinds)


def core_decision(ps: Any) -> Callable[[Any, datetime], Any]:
    """leadops score + stage + route (with the fired rules), without SLAs: evaluate_prepared minus SLAs."""
    prepare, scoring, stages, routing, slas = ps.prepare, ps.scoring, ps.stages, ps.routing, ps.slas
    index = activity_index_of(ps)

    def decide(lead: Any, now: datetime) -> Any:
        view = prepare(lead)
        warnings: list[dict[str, str]] = []
        acts = index(view, now)
        score, score_view = scoring.evaluate(view, now, acts, None, warnings)
        stage = stages.evaluate(view, now, score_view, slas.attempt_check(view, now, acts), None, warnings)
        route = routing.evaluate(view, now, score_view, stage["to"], None, warnings)
        return score, stage, route.section

    return decide


def rate(fn: Callable[[Any, datetime], Any], leads: list[Any], now: datetime = NOW) -> float:
    gc.collect()
    t = time.perf_counter()
    for lead in leads:
        fn(lead, now)
    return len(leads) / (time.perf_counter() - t)


def interleaved(contenders: dict[str, Callable[[Any, datetime], Any]], pool: list[Any], rounds: int,
                size: int) -> dict[str, float]:
    """Best decisions/s of each contender; every round runs all of them on the same fresh slice of leads."""
    best = {name: 0.0 for name in contenders}
    for r in range(rounds):
        start = (r * size) % max(1, len(pool) - size)
        leads = pool[start:start + size]
        for name, fn in contenders.items():
            best[name] = max(best[name], rate(fn, leads))
    return best


def section_decide(results: dict[str, Any], quick: bool) -> None:
    import engine
    from benchmarks import handwritten
    from benchmarks.leadgen import generate_leads
    from benchmarks.policies import rules_1000_dir, scaled_policy_dir
    from engine.errors import LeadError
    from engine.sources import read_directory

    files, root = read_directory(ROOT / "policies")
    ps = engine.load_policy_files(files, root, revision="bench")
    n_pool = 20_000 if quick else 60_000
    log(f"decide: generating {n_pool} leads")
    pool = []
    for lead in generate_leads(n_pool, seed=42, now=NOW):
        try:
            ps.prepare(lead)
        except LeadError:
            continue
        pool.append(lead)
    log("decide: verifying the hand-written baseline against leadops on every lead")
    checked = handwritten.check(ps, pool, NOW)
    later = datetime.fromisoformat("2026-12-24T11:30:00+10:00")
    checked += handwritten.check(ps, list(generate_leads(5000, seed=43, now=later)), later)
    core = core_decision(ps)
    contenders = {
        "handwritten": handwritten.decide,
        "leadops_core": core,
        "leadops_full": lambda lead, now: ps.evaluate(lead, now),
        "leadops_prepare_only": lambda lead, now: ps.prepare(lead),
    }
    log("decide: timing (interleaved rounds)")
    size = 5000
    best = interleaved(contenders, pool, 6 if quick else 12, size)
    explain = interleaved({"leadops_explain": lambda lead, now: ps.evaluate(lead, now, explain=True)}, pool,
                          2 if quick else 4, 2000)
    out: dict[str, Any] = {"verified_identical_leads": checked, **best, **explain}
    hw = best["handwritten"]
    out["ratio_core"] = best["leadops_core"] / hw
    out["ratio_full"] = best["leadops_full"] / hw
    out["ratio_explain"] = explain["leadops_explain"] / hw
    out["validation_share_of_full"] = best["leadops_full"] / best["leadops_prepare_only"]
    out["sla_share_of_full"] = 1 - best["leadops_full"] / best["leadops_core"]
    for name, path in (("x10", scaled_policy_dir(10)), ("rules1000", rules_1000_dir())):
        big = engine.load_policies(path, revision="bench")
        sub = interleaved({f"{name}_full": lambda lead, now, big=big: big.evaluate(lead, now),
                           f"{name}_core": core_decision(big)}, pool, 2 if quick else 4, 2000)
        out.update(sub)
    results["decide"] = out


# ------------------------------------------------------------------------------------------- simpleeval


def section_simpleeval(results: dict[str, Any], quick: bool) -> None:
    import functools

    import simpleeval

    import engine
    from benchmarks.leadgen import generate_leads
    from engine.errors import LeadError
    from engine.expr.functions import HELPERS
    from engine.sources import read_directory

    files, root = read_directory(ROOT / "policies")
    ps = engine.load_policy_files(files, root, revision="bench")
    exprs = []  # (compiled, needs score/stage)
    for group in ps.model.scoring.groups:
        for rule in group.rules:
            if rule.when:
                exprs.append(rule.when.compiled)
    for stage in ps.model.stages.pipeline:
        if stage.entry:
            exprs.append(stage.entry.compiled)
    for rule in ps.model.routing:
        if rule.when:
            exprs.append(rule.when.compiled)
    views = []
    for lead in generate_leads(3000 if quick else 10_000, seed=44, now=NOW):
        try:
            view = ps.prepare(lead)
        except LeadError:
            continue
        _, score_view = ps.scoring.evaluate(view, NOW, activity_index_of(ps)(view, NOW), None, [])
        views.append((view, score_view))

    def compiled(view: Any, score: Any) -> None:
        for c in exprs:
            c.fn(view, NOW, score, None, "lead")

    class Plain(simpleeval.EvalWithCompoundTypes):
        pass

    static = {h.name: h.fn for h in HELPERS.values() if not h.implicit}
    bound = [h for h in HELPERS.values() if h.implicit]

    def functions_for(view: Any) -> dict[str, Any]:
        context = {"lead": view, "now": NOW}
        return {**static, **{h.name: functools.partial(h.fn, *[context[n] for n in h.implicit]) for h in bound}}

    parsed = [(c, Plain().parse(c.source)) for c in exprs]
    shared = Plain()  # one evaluator; each lead only swaps its names and lead-bound helpers

    def simple_preparsed(view: Any, score: Any) -> None:
        shared.names = {"lead": view, "now": NOW, "score": score, "stage": "lead"}
        shared.functions = functions_for(view)
        for c, tree in parsed:
            try:
                shared.eval(c.source, previously_parsed=tree)
            except Exception:
                pass

    def simple_reparse(view: Any, score: Any) -> None:
        shared.names = {"lead": view, "now": NOW, "score": score, "stage": "lead"}
        shared.functions = functions_for(view)
        for c in exprs:
            try:
                shared.eval(c.source)
            except Exception:
                pass

    agree = total = 0
    for view, score in views[:500]:
        ev = Plain(names={"lead": view, "now": NOW, "score": score, "stage": "lead"}, functions=functions_for(view))
        for c, tree in parsed:
            total += 1
            try:
                agree += bool(ev.eval(c.source, previously_parsed=tree)) == bool(c.fn(view, NOW, score, None, "lead"))
            except Exception:
                pass

    def per_lead(fn: Callable[[Any, Any], None]) -> float:
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for view, score in views:
                fn(view, score)
            best = max(best, len(views) / (time.perf_counter() - t))
        return best

    results["simpleeval"] = {
        "expressions_per_lead": len(exprs),
        "plain_simpleeval_agrees": f"{agree}/{total}",
        "leadops_compiled_leads_per_s": per_lead(compiled),
        "simpleeval_preparsed_leads_per_s": per_lead(simple_preparsed),
        "simpleeval_reparse_leads_per_s": per_lead(simple_reparse),
    }


# ------------------------------------------------------------------------------------------------ batch

_RUN_WITH_RUSAGE = """
import resource, subprocess, sys, time
t = time.perf_counter()
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as sink:
    proc = subprocess.run(sys.argv[3:], stdin=src, stdout=sink, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-2000:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, ru.ru_maxrss, proc.returncode, ru.ru_utime + ru.ru_stime)
"""


def run_measured(cmd: list[str], stdin: Path | str = "/dev/null", stdout: Path | str = "/dev/null",
                 cwd: Path = ROOT) -> dict[str, float]:
    """Wall time and peak RSS (largest process of the command's tree, getrusage of the waited-for children)."""
    proc = subprocess.run([PY, "-c", _RUN_WITH_RUSAGE, str(stdin), str(stdout), *cmd], capture_output=True, text=True,
                          check=True, cwd=cwd)
    out = proc.stdout.split()
    if int(out[2]) != 0:
        log(f"command exited {out[2]}: {' '.join(cmd)}\n{proc.stderr}")
    return {"wall_s": float(out[0]), "peak_rss_mb_largest_process": int(out[1]) / 1024, "exit_code": int(out[2]),
            "cpu_s": float(out[3])}  # user + system time of the whole tree: less sensitive to a busy machine


def leadops_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "leadops"
    return [str(exe)] if exe.exists() else [PY, "-m", "cli"]


def run_batch(path: Path, jobs: int) -> dict[str, float]:
    return run_measured([*leadops_cmd(), "eval", "-", "--now", NOW_TEXT, "--jobs", str(jobs)], stdin=path)


# The floor for any JSON Lines tool in Python: parse each line and write it back, nothing else. Same chunking and
# ordered multiprocessing as `leadops eval` when jobs > 1 (a bad line is counted and skipped, as leadops would).
_BARE_JSON = """
import json, sys
from itertools import islice

def work(chunk):
    out = []
    for line in chunk:
        try:
            out.append(json.dumps(json.loads(line)) + "\\n")
        except ValueError:
            out.append('{"error": "malformed"}\\n')
    return "".join(out)

def chunks(it, size=500):
    while True:
        c = list(islice(it, size))
        if not c:
            return
        yield c

if __name__ == "__main__":
    jobs = int(sys.argv[1])
    src = sys.stdin
    out = sys.stdout
    if jobs == 1:
        for c in chunks(iter(src)):
            out.write(work(c))
    else:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for text in pool.imap(work, chunks(iter(src)), chunksize=1):
                out.write(text)
    out.flush()
"""


def run_bare_json(path: Path, jobs: int) -> dict[str, float]:
    return run_measured([PY, "-c", _BARE_JSON, str(jobs)], stdin=path)


def leads_file(n: int) -> Path:
    """The seeded JSON Lines input (cached in the temp dir): n leads, 0.1 % invalid, 0.05 % malformed."""
    from benchmarks.leadgen import write_jsonl

    cache = Path(tempfile.gettempdir()) / f"leadops-bench-leads-{n}-seed7.jsonl"
    if not cache.exists():
        log(f"writing {n} leads to {cache}")
        write_jsonl(str(cache) + ".tmp", n, seed=7, now=NOW_TEXT, invalid_rate=0.001, malformed_rate=0.0005)
        os.replace(str(cache) + ".tmp", cache)
    return cache


def section_batch(results: dict[str, Any], quick: bool, n: int | None) -> None:
    from engine.batch import default_jobs

    n = n or (100_000 if quick else 1_000_000)
    cache = leads_file(n)
    size_mb = cache.stat().st_size / 1e6
    jobs = default_jobs()
    log(f"batch: bare JSON round trip of {n} leads, 1 and {jobs} processes")
    bare1 = run_bare_json(cache, 1)
    bare_many = run_bare_json(cache, jobs)
    log(f"batch: leadops eval {n} leads, --jobs {jobs}")
    all_cores = run_batch(cache, jobs)
    sample = Path(tempfile.gettempdir()) / f"leadops-bench-leads-{n}-head.jsonl"
    m = min(n, 50_000)
    with open(cache, encoding="utf-8") as src, open(sample, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= m:
                break
            dst.write(line)
    log(f"batch: scaling sample of {m} leads, --jobs 1 vs --jobs {jobs}")
    one = run_batch(sample, 1)
    many = run_batch(sample, jobs)
    results["batch"] = {
        "leads": n, "input_mb": size_mb, "jobs": jobs, **{f"all_cores_{k}": v for k, v in all_cores.items()},
        "all_cores_leads_per_s": n / all_cores["wall_s"],
        "sample_leads": m, "sample_jobs1_leads_per_s": m / one["wall_s"], "sample_all_cores_leads_per_s": m / many["wall_s"],
        "sample_jobs1_peak_rss_mb": one["peak_rss_mb_largest_process"],
        "sample_all_cores_peak_rss_mb": many["peak_rss_mb_largest_process"],
        "bare_json_jobs1_wall_s": bare1["wall_s"], "bare_json_jobs1_leads_per_s": n / bare1["wall_s"],
        "bare_json_jobs1_peak_rss_mb": bare1["peak_rss_mb_largest_process"],
        "bare_json_all_cores_wall_s": bare_many["wall_s"], "bare_json_all_cores_leads_per_s": n / bare_many["wall_s"],
        "bare_json_all_cores_peak_rss_mb": bare_many["peak_rss_mb_largest_process"],
    }
    b = results["batch"]
    b["slowdown_vs_bare_json_all_cores"] = b["bare_json_all_cores_leads_per_s"] / b["all_cores_leads_per_s"]
    b["slowdown_vs_bare_json_jobs1"] = b["bare_json_jobs1_leads_per_s"] / b["sample_jobs1_leads_per_s"]
    b["bare_json_best_leads_per_s"] = max(b["bare_json_jobs1_leads_per_s"], b["bare_json_all_cores_leads_per_s"])
    b["slowdown_vs_bare_json_best"] = b["bare_json_best_leads_per_s"] / b["all_cores_leads_per_s"]


# ------------------------------------------------------------------------------------------------- diff


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c",
                           "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


# The change under review: raise the SQL threshold (stages) and widen the SEQ SMB routing rule.
DIFF_EDITS = {"stages.yaml": ("score.total >= 50 and not lead.is_competitor", "score.total >= 60 and not lead.is_competitor"),
              "routing.yaml": ("lead.employees < 101", "lead.employees < 201")}


def diff_repo(tmp: str | Path) -> Path:
    """A git repo in `tmp` with the example set on `main` and DIFF_EDITS committed on `raise-sql`."""
    import shutil

    repo = Path(tmp) / "repo"
    repo.mkdir()
    for d in ("policies", "schemas", "scenarios"):
        shutil.copytree(ROOT / d, repo / d)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "checkout", "-qb", "raise-sql")
    for name, (old, new) in DIFF_EDITS.items():
        p = repo / "policies" / name
        text = p.read_text(encoding="utf-8")
        assert old in text, f"{name}: {old!r} not found"
        p.write_text(text.replace(old, new, 1), encoding="utf-8")
    _git(repo, "commit", "-qam", "raise SQL threshold; SEQ SMB up to 200 employees")
    return repo


def section_diff(results: dict[str, Any], quick: bool, n: int | None) -> None:
    n = n or (100_000 if quick else 1_000_000)
    leads = leads_file(n)
    with tempfile.TemporaryDirectory(prefix="leadops-bench-diff-") as tmp:
        repo = diff_repo(tmp)
        out_file = Path(tmp) / "impact.json"
        cmd = [*leadops_cmd(), "diff", "--base", "main", "--head", "raise-sql", "--leads", str(leads),
               "--format", "json", "--acknowledge", "--now", NOW_TEXT]
        log(f"diff: leadops diff over {n} leads (main -> raise-sql)")
        m = run_measured(cmd, stdout=out_file, cwd=repo)
        report_doc = json.loads(out_file.read_text(encoding="utf-8"))
    impact = report_doc.get("impact") or {}
    results["diff"] = {"leads": n, **m, "leads_per_s": n / m["wall_s"],
                       "changes": [c.get("text") for c in report_doc.get("changes", [])],
                       "impact_total": impact.get("leads"), "impact_errors": impact.get("errors"),
                       "changed_stage_or_route_percent": impact.get("changed_stage_or_route_percent"),
                       "impact_changed": impact.get("changed")}


# ------------------------------------------------------------------------------------------- scenarios

_SCENARIOS = """
import json, sys, time, tracemalloc
sys.path.insert(0, sys.argv[2])
from benchmarks.bench_scenarios import generate
import engine
from engine import scenarios as sc
from engine.sources import read_directory

files, root = read_directory(sys.argv[2] + "/policies")
ps = engine.load_policy_files(files, root, revision="bench")
count = int(sys.argv[1])
t = time.perf_counter()
scenarios = generate(ps, count)
gen = time.perf_counter() - t
best, failed = 0.0, 0
for _ in range(3):
    t = time.perf_counter()
    res = sc.run(ps, scenarios)
    best = max(best, count / (time.perf_counter() - t))
    failed = sum(1 for r in res if not r.ok)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve (it would be the benchmark process's peak)
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024
tracemalloc.start()
sc.run(ps, scenarios[:2000])
peak = tracemalloc.get_traced_memory()[1] / 1e6
tracemalloc.stop()
print(json.dumps({"scenarios": count, "expectations": sum(len(s.expect) for s in scenarios), "generate_s": gen,
                  "scenarios_per_s": best, "failed": failed, "process_max_rss_mb": rss,
                  "replay_2000_tracemalloc_peak_mb": peak}))
"""


def section_scenarios(results: dict[str, Any], quick: bool) -> None:
    count = 2000 if quick else 10_000
    log(f"scenarios: generating and replaying {count} scenarios (fresh process, best of 3)")
    out = subprocess.run([PY, "-c", _SCENARIOS, str(count), str(ROOT)], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    results["scenarios"] = json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- service

# The service in its own process (so its peak RSS is its own): a signed bundle of the example policies,
# BackgroundServer on 127.0.0.1 (ephemeral port), no decision log. Prints the URL, serves until stdin closes.
# argv[3] == "tcp": the listening socket is re-created with proto=IPPROTO_TCP. BackgroundServer makes it with
# proto 0, and asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP, so every keep-alive
# response (head and body are two writes) waits for the client's delayed ACK (40 ms). `leadops serve`
# (uvicorn.run(host, port) -> loop.create_server) gets proto=IPPROTO_TCP and TCP_NODELAY.
_SERVER = """
import socket, sys, threading
from engine.server import BackgroundServer, create_app
app = create_app(sys.argv[1], sys.argv[2], watch=False)
srv = BackgroundServer(app, "127.0.0.1", 0)
if sys.argv[3] == "tcp":
    srv.sock.close()
    srv.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.sock.bind(("127.0.0.1", 0))
    srv.host, srv.port = srv.sock.getsockname()[:2]
    srv.thread = threading.Thread(target=srv.server.run, kwargs={"sockets": [srv.sock]}, daemon=True)
with srv:
    print(srv.url, flush=True)
    sys.stdin.read()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so it would report the benchmark process's peak
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(int(hwm) / 1024, flush=True)
"""


def _load(url: str, bodies: list[bytes], concurrency: int, seconds: float, nodelay: bool = True) -> dict[str, Any]:
    """`concurrency` threads, one keep-alive httpx client each, POST bodies round-robin for `seconds` (bounded).

    TCP_NODELAY on the client: httpx writes the request head and body in two sends, and without it Nagle's
    algorithm holds the body until the server's delayed ACK (40 ms on Linux), which would measure the kernel.
    """
    import socket
    import threading

    import httpx

    headers = {"content-type": "application/json"}
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if nodelay else []
        with httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(socket_options=opts)) as client:
            i = k
            client.post("/v1/decisions", content=bodies[i % len(bodies)], headers=headers)  # connect + warm
            start.wait()
            mine = lat[k]
            while True:
                t = time.perf_counter()
                if t >= stop_at[0]:
                    break
                try:
                    r = client.post("/v1/decisions", content=bodies[i % len(bodies)], headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - t)
                errors[k] += not ok
                i += concurrency

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for th in threads:
        th.start()
    stop_at[0] = time.perf_counter() + 3600  # set properly once every client is connected
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for th in threads:
        th.join(seconds + 60)
    wall = time.perf_counter() - t0
    all_lat = sorted(x for xs in lat for x in xs)
    q = statistics.quantiles(all_lat, n=100, method="inclusive")
    return {"requests": len(all_lat), "wall_s": wall, "requests_per_s": len(all_lat) / wall,
            "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3, "max_ms": all_lat[-1] * 1e3, "errors": sum(errors)}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def section_service(results: dict[str, Any], quick: bool) -> None:
    import engine
    from benchmarks.leadgen import generate_leads
    from engine.bundle import build_bundle
    from engine.errors import LeadError
    from engine.signing import generate_keypair, sign_bundle
    from engine.sources import read_directory

    files, root = read_directory(ROOT / "policies")
    ps = engine.load_policy_files(files, root, revision="bench")
    leads = []
    for lead in generate_leads(3000, seed=46, now=NOW):
        try:
            ps.prepare(lead)
        except LeadError:
            continue
        leads.append(lead)
    single = [json.dumps({"lead": lead, "now": NOW_TEXT}).encode() for lead in leads]
    batches = [json.dumps({"leads": leads[i:i + 100], "now": NOW_TEXT}).encode() for i in range(0, len(leads) - 99, 100)]
    seconds = 5.0 if quick else 10.0
    concurrency = 8
    out: dict[str, Any] = {"concurrency": concurrency, "seconds": seconds, "batch_size": 100}
    with tempfile.TemporaryDirectory(prefix="leadops-bench-svc-") as tmp:
        keys = generate_keypair(Path(tmp) / "keys", "bench")
        bundle = Path(tmp) / "bundle.tar.gz"
        bundle.write_bytes(sign_bundle(build_bundle(dict(ps.source_files), "bench", policy_version="bench"),
                                       keys.private_path, keys.key_id, 1, "30d"))
        for variant, bodies, sock in (("single", single, "tcp"), ("batch100", batches, "tcp"),
                                      ("single_as_is", single, "as-is")):
            server = subprocess.Popen([PY, "-c", _SERVER, str(bundle), str(keys.public_path), sock], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert server.stdout is not None and server.stdin is not None
                url = server.stdout.readline().strip()
                if not url.startswith("http://127.0.0.1:"):
                    raise RuntimeError(f"service did not start: {url!r}")
                log(f"service: {variant}, {concurrency} concurrent clients for {seconds:g} s on {url}")
                cpu0 = _cpu_s(server.pid)
                m = _load(url, bodies, concurrency, seconds)
                m["server_cpu_ms_per_request"] = (_cpu_s(server.pid) - cpu0) * 1e3 / m["requests"]
                m["server_cpu_utilisation"] = (_cpu_s(server.pid) - cpu0) / m["wall_s"]
                server.stdin.close()
                m["server_peak_rss_mb"] = float(server.stdout.read().split()[-1])
            finally:
                server.wait(30)
            out[variant] = m
    out["batch100"]["decisions_per_s"] = out["batch100"]["requests_per_s"] * 100
    results["service"] = out


# ----------------------------------------------------------------------------------------------- memory


def section_memory(results: dict[str, Any], quick: bool) -> None:
    import engine
    from benchmarks.leadgen import generate_leads
    from engine.errors import LeadError
    from engine.sources import read_directory

    files, root = read_directory(ROOT / "policies")
    ps = engine.load_policy_files(files, root, revision="bench")
    n = 5000 if quick else 20_000
    tracemalloc.start()
    for lead in generate_leads(n, seed=45, now=NOW):
        try:
            ps.evaluate(lead, NOW)
        except LeadError:
            pass
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results["memory"] = {"decisions": n, "tracemalloc_peak_mb": peak / 1e6, "tracemalloc_retained_mb": current / 1e6,
                         "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ------------------------------------------------------------------------------------------------ report


def report(r: dict[str, Any]) -> str:
    lines = [f"# leadops benchmark results ({r['when']})", "",
             f"{r['cpu']} · {r['cores']} cores · Python {r['python']}", ""]
    if "load" in r:
        lines += ["## Policy load + validate + compile", "",
                  "| set | rules | fresh process: first load | … with `holidays` already imported | warm reload | import engine |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, x in r["load"].items():
            lines.append(f"| {name} | {x['rules']} | {x['first_load_ms']:.0f} ms | {x['first_load_holidays_imported_ms']:.0f} ms "
                         f"| {x['warm_load_ms']:.0f} ms | {x['import_engine_ms']:.0f} ms |")
        lines.append("")
    if "decide" in r:
        d = r["decide"]
        hw = d["handwritten"]
        lines += ["## Decisions per second, one core (same run, same leads, interleaved, best round)", "",
                  f"Hand-written baseline verified identical (score, groups, grade, fired rules + points, stage, route) on "
                  f"{d['verified_identical_leads']} leads.", "",
                  "| what | decisions/s | vs hand-written |", "|---|---:|---:|",
                  f"| hand-written Python (score + stage + route + fired rules) | {hw:,.0f} | 1.00 |",
                  f"| leadops score + stage + route (fired rules, why) | {d['leadops_core']:,.0f} | {d['ratio_core']:.2f} |",
                  f"| leadops full decision (+ SLAs) | {d['leadops_full']:,.0f} | {d['ratio_full']:.2f} |",
                  f"| leadops full decision with --explain | {d['leadops_explain']:,.0f} | {d['ratio_explain']:.2f} |",
                  f"| leadops lead validation alone (prepare) | {d['leadops_prepare_only']:,.0f} | |",
                  f"| x10 policy: core / full | {d['x10_core']:,.0f} / {d['x10_full']:,.0f} | {d['x10_core'] / hw:.2f} / {d['x10_full'] / hw:.2f} |",
                  f"| 1,000-rule policy: core / full | {d['rules1000_core']:,.0f} / {d['rules1000_full']:,.0f} | |",
                  "",
                  f"Validation is {d['validation_share_of_full']:.0%} of a full decision's time; SLAs are "
                  f"{d['sla_share_of_full']:.0%}.", ""]
    if "simpleeval" in r:
        s = r["simpleeval"]
        lines += ["## Expressions: leadops vs simpleeval", "",
                  f"All {s['expressions_per_lead']} expressions of the example policy (scoring conditions, stage entries, routing) "
                  f"on each lead view; plain simpleeval agrees on {s['plain_simpleeval_agrees']} results.", "",
                  "| evaluator | leads/s | vs leadops |", "|---|---:|---:|",
                  f"| leadops compiled | {s['leadops_compiled_leads_per_s']:,.0f} | 1.00 |",
                  f"| simpleeval, pre-parsed | {s['simpleeval_preparsed_leads_per_s']:,.0f} | "
                  f"{s['simpleeval_preparsed_leads_per_s'] / s['leadops_compiled_leads_per_s']:.2f} |",
                  f"| simpleeval, parsing every time | {s['simpleeval_reparse_leads_per_s']:,.0f} | "
                  f"{s['simpleeval_reparse_leads_per_s'] / s['leadops_compiled_leads_per_s']:.2f} |", ""]
    hw = r["decide"]["handwritten"] if "decide" in r else None

    def vs_hw(x: float) -> str:
        return f"{x / hw:.2f}" if hw else ""

    if "scenarios" in r:
        s = r["scenarios"]
        lines += ["## Scenario replay (`leadops test` path: evaluate, check every expectation)", "",
                  "| what | scenarios/s | vs hand-written decisions/s | peak memory |", "|---|---:|---:|---:|",
                  f"| {s['scenarios']:,} generated scenarios ({s['expectations']:,} expectations, {s['failed']} failed), "
                  f"one core, best of 3 | {s['scenarios_per_s']:,.0f} | {vs_hw(s['scenarios_per_s'])} | "
                  f"process {s['process_max_rss_mb']:.0f} MB RSS; replay of 2,000: tracemalloc peak "
                  f"{s['replay_2000_tracemalloc_peak_mb']:.1f} MB |", ""]
    if "batch" in r:
        b = r["batch"]
        j = b["jobs"]
        lines += ["## `leadops eval` over JSON Lines vs a bare JSON round trip", "",
                  "Bare JSON round trip: a Python process that only does `json.loads` + `json.dumps` per line to /dev/null "
                  f"(with {j} processes: the same chunking and ordered `multiprocessing` as `leadops eval`).", "",
                  "| input | what | processes | wall | leads/s | vs bare JSON (same processes) | vs hand-written (one core) | peak RSS (largest process) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|",
                  f"| {b['leads']:,} leads ({b['input_mb']:.0f} MB) | bare JSON round trip | 1 | {b['bare_json_jobs1_wall_s']:.1f} s | "
                  f"{b['bare_json_jobs1_leads_per_s']:,.0f} | 1.00 | | {b['bare_json_jobs1_peak_rss_mb']:.0f} MB |",
                  f"| {b['leads']:,} leads | bare JSON round trip | {j} | {b['bare_json_all_cores_wall_s']:.1f} s | "
                  f"{b['bare_json_all_cores_leads_per_s']:,.0f} | 1.00 | | {b['bare_json_all_cores_peak_rss_mb']:.0f} MB |",
                  f"| {b['leads']:,} leads | `leadops eval --jobs {j}` | {j} | {b['all_cores_wall_s']:.1f} s | "
                  f"{b['all_cores_leads_per_s']:,.0f} | **{1 / b['slowdown_vs_bare_json_all_cores']:.2f}** | "
                  f"{vs_hw(b['all_cores_leads_per_s'])} | {b['all_cores_peak_rss_mb_largest_process']:.0f} MB |",
                  f"| first {b['sample_leads']:,} leads | `leadops eval --jobs 1` | 1 | | {b['sample_jobs1_leads_per_s']:,.0f} | "
                  f"{1 / b['slowdown_vs_bare_json_jobs1']:.2f} | {vs_hw(b['sample_jobs1_leads_per_s'])} | {b['sample_jobs1_peak_rss_mb']:.0f} MB |",
                  f"| first {b['sample_leads']:,} leads | `leadops eval --jobs {j}` | {j} | | {b['sample_all_cores_leads_per_s']:,.0f} | | | "
                  f"{b['sample_all_cores_peak_rss_mb']:.0f} MB |", "",
                  f"leadops eval (--jobs {j}) is {b['slowdown_vs_bare_json_best']:.1f}x slower than the faster bare JSON round trip, "
                  f"{b['slowdown_vs_bare_json_all_cores']:.1f}x slower than the bare round trip on {j} processes; on one core "
                  f"{b['slowdown_vs_bare_json_jobs1']:.1f}x.", ""]
    if "diff" in r:
        d = r["diff"]
        lines += ["## `leadops diff` between two git revisions", "",
                  f"Changes: {'; '.join(d['changes'])}. Impact: {d['impact_total']:,} leads compared, "
                  f"{d['impact_errors']:,} invalid; changed: " + ", ".join(f"{k} {v:,}" for k, v in d['impact_changed'].items()) + f" ({d['changed_stage_or_route_percent']} % change stage or route).", "",
                  "| input | wall | leads/s | vs the faster bare JSON round trip | vs `leadops eval` | peak RSS (largest process) |",
                  "|---|---:|---:|---:|---:|---:|",
                  f"| {d['leads']:,} leads | {d['wall_s']:.1f} s | {d['leads_per_s']:,.0f} | "
                  + (f"{d['leads_per_s'] / r['batch']['bare_json_best_leads_per_s']:.2f} | "
                     f"{d['leads_per_s'] / r['batch']['all_cores_leads_per_s']:.2f}" if "batch" in r
                     and r["batch"]["leads"] == d["leads"] else " | ")
                  + f" | {d['peak_rss_mb_largest_process']:.0f} MB |", ""]
    if "service" in r:
        v = r["service"]
        one, many = v["single"], v["batch100"]
        lines += ["## Service: POST /v1/decisions on loopback", "",
                  f"`BackgroundServer` (uvicorn, one process) with a signed bundle of the example policies; {v['concurrency']} "
                  f"concurrent keep-alive httpx clients (threads of the benchmark process) for {v['seconds']:g} s.", "",
                  "| request | requests/s | decisions/s | vs hand-written | p50 | p99 | max | errors | server peak RSS | server CPU / request (busy) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                  f"| one lead | {one['requests_per_s']:,.0f} | {one['requests_per_s']:,.0f} | {vs_hw(one['requests_per_s'])} | "
                  f"{one['p50_ms']:.1f} ms | {one['p99_ms']:.1f} ms | {one['max_ms']:.0f} ms | {one['errors']} / {one['requests']:,} | "
                  f"{one['server_peak_rss_mb']:.0f} MB | {one['server_cpu_ms_per_request']:.2f} ms ({one['server_cpu_utilisation']:.0%}) |",
                  f"| batch of {v['batch_size']} | {many['requests_per_s']:,.0f} | {many['decisions_per_s']:,.0f} | "
                  f"{vs_hw(many['decisions_per_s'])} | {many['p50_ms']:.1f} ms | {many['p99_ms']:.1f} ms | {many['max_ms']:.0f} ms | "
                  f"{many['errors']} / {many['requests']:,} | {many['server_peak_rss_mb']:.0f} MB | "
                  f"{many['server_cpu_ms_per_request']:.2f} ms ({many['server_cpu_utilisation']:.0%}) |"]
        if "single_as_is" in v:
            x = v["single_as_is"]
            lines += [f"| one lead, `BackgroundServer` socket as is (no TCP_NODELAY) | {x['requests_per_s']:,.0f} | "
                      f"{x['requests_per_s']:,.0f} | {vs_hw(x['requests_per_s'])} | {x['p50_ms']:.1f} ms | {x['p99_ms']:.1f} ms | "
                      f"{x['max_ms']:.0f} ms | {x['errors']} / {x['requests']:,} | {x['server_peak_rss_mb']:.0f} MB | "
                      f"{x['server_cpu_ms_per_request']:.2f} ms ({x['server_cpu_utilisation']:.0%}) |"]
        lines += ["", "The first two rows re-create `BackgroundServer`'s listening socket with proto=IPPROTO_TCP, so asyncio "
                  "sets TCP_NODELAY on each connection, as it does for `leadops serve`; as is, every keep-alive response "
                  "waits for the client's 40 ms delayed ACK.", ""]
    if "memory" in r:
        m = r["memory"]
        lines += ["## Memory", "",
                  f"{m['decisions']:,} in-process decisions: tracemalloc peak {m['tracemalloc_peak_mb']:.1f} MB, retained "
                  f"{m['tracemalloc_retained_mb']:.1f} MB (bounded caches); benchmark process max RSS {m['process_max_rss_mb']:.0f} MB.", ""]
    return "\n".join(lines)


SECTIONS = ["load", "decide", "simpleeval", "scenarios", "memory", "service", "batch", "diff"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run the leadops benchmarks.")
    p.add_argument("--quick", action="store_true", help="smaller samples (about a minute)")
    p.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    p.add_argument("--batch-leads", type=int,
                   help="leads in the batch and diff runs (default 1,000,000; --quick 100,000)")
    p.add_argument("--json", metavar="FILE", help="write the raw figures as JSON")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    results: dict[str, Any] = {"when": datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu_model(),
                               "cores": os.cpu_count(), "python": platform.python_version()}
    wanted = a.only or SECTIONS
    if "load" in wanted:
        section_load(results, a.quick)
    if "decide" in wanted:
        section_decide(results, a.quick)
    if "simpleeval" in wanted:
        section_simpleeval(results, a.quick)
    if "scenarios" in wanted:
        section_scenarios(results, a.quick)
    if "memory" in wanted:
        section_memory(results, a.quick)
    if "service" in wanted:
        section_service(results, a.quick)
    if "batch" in wanted:
        section_batch(results, a.quick, a.batch_leads)
    if "diff" in wanted:
        section_diff(results, a.quick, a.batch_leads)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    main()
