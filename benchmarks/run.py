"""leadops benchmarks: one command, every figure, ratios to a hand-written baseline measured in the same run.

    .venv/bin/python -m benchmarks.run                 # everything (batch: 1,000,000 leads; ~5 minutes)
    .venv/bin/python -m benchmarks.run --quick         # smaller samples (batch: 100,000 leads; ~1 minute)
    .venv/bin/python -m benchmarks.run --json out.json # also write the raw figures

Not part of the test suite. Sections:
  load       policy load + validate + compile: example set (fresh process / warm), x10 set, 1,000-rule set
  decide     one core, decisions/s: hand-written Python (verified identical first), leadops score+stage+route,
             full decision (with SLAs), with --explain; validation share; x10 and 1,000-rule sets
  simpleeval the policy's expressions per lead: leadops compiled vs simpleeval (pre-parsed / re-parsed)
  batch      `leadops eval leads.jsonl` on every core vs --jobs 1: leads/s, wall time, peak RSS
  memory     tracemalloc peak over 20,000 in-process decisions and the process's max RSS
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


def core_decision(ps: Any) -> Callable[[Any, datetime], Any]:
    """leadops score + stage + route (with the fired rules), without SLAs: evaluate_prepared minus SLAs."""
    from engine.scoring import activities_by_type

    prepare, scoring, stages, routing, slas = ps.prepare, ps.scoring, ps.stages, ps.routing, ps.slas

    def decide(lead: Any, now: datetime) -> Any:
        view = prepare(lead)
        warnings: list[dict[str, str]] = []
        acts = activities_by_type(view, now)
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
    from engine.scoring import activities_by_type
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
        _, score_view = ps.scoring.evaluate(view, NOW, activities_by_type(view, NOW), None, [])
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
with open(sys.argv[1], "rb") as src, open("/dev/null", "wb") as sink:
    rc = subprocess.run(sys.argv[2:], stdin=src, stdout=sink, stderr=subprocess.PIPE).returncode
wall = time.perf_counter() - t
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""


def run_batch(path: Path, jobs: int) -> dict[str, float]:
    cmd = [str(ROOT / ".venv" / "bin" / "leadops"), "eval", "-", "--now", NOW_TEXT, "--jobs", str(jobs)]
    if not Path(cmd[0]).exists():
        cmd = [PY, "-m", "cli", "eval", "-", "--now", NOW_TEXT, "--jobs", str(jobs)]
    out = subprocess.run([PY, "-c", _RUN_WITH_RUSAGE, str(path), *cmd], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    return {"wall_s": float(out[0]), "peak_rss_mb_largest_process": int(out[1]) / 1024, "exit_code": int(out[2])}


def section_batch(results: dict[str, Any], quick: bool, n: int | None) -> None:
    from benchmarks.leadgen import write_jsonl
    from engine.batch import default_jobs

    n = n or (100_000 if quick else 1_000_000)
    cache = Path(tempfile.gettempdir()) / f"leadops-bench-leads-{n}-seed7.jsonl"
    if not cache.exists():
        log(f"batch: writing {n} leads to {cache}")
        write_jsonl(str(cache) + ".tmp", n, seed=7, now=NOW_TEXT, invalid_rate=0.001, malformed_rate=0.0005)
        os.replace(str(cache) + ".tmp", cache)
    size_mb = cache.stat().st_size / 1e6
    jobs = default_jobs()
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
    }


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
    if "batch" in r:
        b = r["batch"]
        lines += ["## `leadops eval` over JSON Lines", "",
                  f"| input | jobs | wall | leads/s | peak RSS (largest process) |", "|---|---:|---:|---:|---:|",
                  f"| {b['leads']:,} leads ({b['input_mb']:.0f} MB) | {b['jobs']} | {b['all_cores_wall_s']:.1f} s | "
                  f"{b['all_cores_leads_per_s']:,.0f} | {b['all_cores_peak_rss_mb_largest_process']:.0f} MB |",
                  f"| first {b['sample_leads']:,} leads | 1 | | {b['sample_jobs1_leads_per_s']:,.0f} | {b['sample_jobs1_peak_rss_mb']:.0f} MB |",
                  f"| first {b['sample_leads']:,} leads | {b['jobs']} | | {b['sample_all_cores_leads_per_s']:,.0f} | |", ""]
    if "memory" in r:
        m = r["memory"]
        lines += ["## Memory", "",
                  f"{m['decisions']:,} in-process decisions: tracemalloc peak {m['tracemalloc_peak_mb']:.1f} MB, retained "
                  f"{m['tracemalloc_retained_mb']:.1f} MB (bounded caches); benchmark process max RSS {m['process_max_rss_mb']:.0f} MB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run the leadops benchmarks.")
    p.add_argument("--quick", action="store_true", help="smaller samples (about a minute)")
    p.add_argument("--only", nargs="*", choices=["load", "decide", "simpleeval", "batch", "memory"],
                   help="run only these sections")
    p.add_argument("--batch-leads", type=int, help="leads in the batch run (default 1,000,000; --quick 100,000)")
    p.add_argument("--json", metavar="FILE", help="write the raw figures as JSON")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    results: dict[str, Any] = {"when": datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu_model(),
                               "cores": os.cpu_count(), "python": platform.python_version()}
    wanted = a.only or ["load", "decide", "simpleeval", "batch", "memory"]
    if "load" in wanted:
        section_load(results, a.quick)
    if "decide" in wanted:
        section_decide(results, a.quick)
    if "simpleeval" in wanted:
        section_simpleeval(results, a.quick)
    if "memory" in wanted:
        section_memory(results, a.quick)
    if "batch" in wanted:
        section_batch(results, a.quick, a.batch_leads)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    main()
