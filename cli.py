"""The `leadops` command: click wiring only (options -> engine API -> render -> exit code).

Exit codes: 0 success; 1 a user error (invalid policy, bad lead, failed test, rejected bundle);
2 a usage error (unknown option, bad argument) or a batch in which some records failed (partial).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

import engine
from engine import render
from engine.errors import LeadError, LeadopsError, PolicyError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
POLICIES_HELP = "Policy directory (default: ./policies)."


class UserError(click.ClickException):
    """A mistake in the user's input: one precise message, exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> None:
    raise UserError(message)


def parse_now(value: str | None) -> datetime:
    """The explicit `now`: ISO 8601 with an offset; defaults to the current UTC time."""
    if value is None:
        return datetime.now(timezone.utc).replace(microsecond=0)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an ISO 8601 date-time (e.g. 2026-11-23T09:00:00+10:00)",
                                 param_hint="--now") from None
    if now.tzinfo is None:
        raise click.BadParameter(f"'{value}' has no UTC offset; add one, e.g. {value}+10:00 or {value}Z",
                                 param_hint="--now")
    return now


def open_policies(spec: str | None) -> "engine.PolicySet":
    """Load the policy set named by --policies, turning PolicyError into located messages and exit 1."""
    try:
        return engine.load_policies(spec or "policies")
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None


@click.group(context_settings=CONTEXT)
@click.version_option(engine.__version__, prog_name="leadops")
def cli() -> None:
    """leadops: lifecycle stages, lead scoring, routing and SLAs as reviewed, tested policy.

    \b
    Example:
      leadops validate && leadops eval scenarios/leads/icp-enterprise-brisbane.json --explain --format text
    """


# ---------------------------------------------------------------- validate


@cli.command()
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(policies: str | None, fmt: str) -> None:
    """Check a policy set: JSON Schemas, references, expressions and semantic rules.

    Every problem is reported as `file:line:column: error[CODE]: message` with a hint; exit 1 when any.

    \b
    Example:
      leadops validate --policies policies --format json
    """
    try:
        ps = engine.load_policies(policies or "policies")
    except PolicyError as exc:
        if fmt == "json":
            click.echo(render.diagnostics_json(exc.diagnostics))
        else:
            click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    info = ps.describe()
    if fmt == "json":
        click.echo(render.diagnostics_json([], valid=True, summary=info))
    else:
        click.echo(f"{policies or 'policies'}: valid — {info['name']} {info['version']} ({info['revision']}): "
                   f"{info['scoring_rules']} scoring rules, {info['stages']} stages, {info['routing_rules']} routing "
                   f"rules, {info['slas']} SLAs, {info['calendars']} calendars")


# ---------------------------------------------------------------- eval


def _read_single_or_lines(source: str) -> tuple[Any, Any]:
    """(single lead document or None, iterator of (line_no, text) for JSON Lines or None)."""
    if source == "-":
        stream = sys.stdin
    else:
        path = Path(source)
        if not path.is_file():
            fail(f"lead file '{source}' does not exist")
        stream = path.open("r", encoding="utf-8", errors="surrogateescape")
        if path.suffix in (".jsonl", ".ndjson"):
            return None, enumerate(stream, 1)
    first = stream.readline()
    try:
        doc = json.loads(first) if first.strip() else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        rest = stream.readline()
        if not rest.strip():
            remaining = stream.read()
            if not remaining.strip():
                return doc, None
            rest = remaining  # pragma: no cover - blank line inside JSON Lines
        import itertools

        lines = itertools.chain([(1, first), (2, rest)], enumerate(stream, 3))
        return None, lines
    text = first + stream.read()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        fail(f"{source}: not a JSON object or JSON Lines: {exc}")
    if isinstance(doc, list):
        return None, ((i, json.dumps(x)) for i, x in enumerate(doc, 1))
    if not isinstance(doc, dict):
        fail(f"{source}: a lead must be a JSON object, got {type(doc).__name__}")
    return doc, None


def lead_error_record(line: int, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, LeadError):
        return {"line": line, "error": {"code": exc.code, "field": exc.field, "message": exc.message}}
    return {"line": line, "error": {"code": "LEAD000", "field": "", "message": str(exc)}}


@cli.command("eval")
@click.argument("leads", nargs=-1, metavar="[LEAD…|-]")
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
@click.option("--now", metavar="ISO8601", help="The decision time (default: the current UTC time).")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option("--explain", is_flag=True, help="Include a trace of every rule considered and why it did or did not fire.")
def eval_cmd(leads: tuple[str, ...], policies: str | None, now: str | None, fmt: str, explain: bool) -> None:
    """Evaluate one lead (a JSON object) or many (JSON Lines) into decisions.

    A JSON Lines input yields one output line per input line: a decision, or an error record with the
    line number, the failing field and the reason. Exit 2 when any line failed (partial), 1 on a bad single lead.

    \b
    Example:
      leadops eval scenarios/leads/icp-enterprise-brisbane.json --now 2026-11-23T09:00:00+10:00 --explain --format text
    """
    when = parse_now(now)
    ps = open_policies(policies)
    if len(leads) > 1:
        _eval_files(ps, leads, when, fmt, explain)
        return
    single, lines = _read_single_or_lines(leads[0] if leads else "-")
    if single is not None:
        try:
            decision = ps.evaluate(single, when, explain=explain).to_dict()
        except LeadError as exc:
            fail(f"invalid lead: {exc.field + ': ' if exc.field else ''}{exc.message}")
        click.echo(render.decision_text(decision, explain) if fmt == "text" else render.to_json(decision))
        return
    total = failed = 0
    out = sys.stdout
    for number, text in lines:
        if not text.strip():
            continue
        total += 1
        try:
            raw = json.loads(text)
            decision = ps.evaluate(raw, when, explain=explain).to_dict()
            out.write((render.decision_text(decision, explain) + "\n\n") if fmt == "text" else render.to_json(decision, pretty=False) + "\n")
        except (ValueError, LeadError) as exc:
            failed += 1
            if isinstance(exc, ValueError) and not isinstance(exc, LeadError):
                exc = LeadError(f"malformed JSON: {exc}", code="LEAD000")
            out.write(render.to_json(lead_error_record(number, exc), pretty=False) + "\n")
    click.echo(f"{total} leads: {total - failed} decisions, {failed} errors", err=True)
    if failed:
        raise SystemExit(2)


def _eval_files(ps: "engine.PolicySet", paths: tuple[str, ...], when: datetime, fmt: str, explain: bool) -> None:
    """Several lead files: one output line (or text block) per file, errors as records naming the file."""
    failed = 0
    for path in paths:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            decision = ps.evaluate(raw, when, explain=explain).to_dict()
        except (OSError, ValueError, LeadError) as exc:
            failed += 1
            record = lead_error_record(0, exc if isinstance(exc, LeadError) else LeadError(str(exc), code="LEAD000"))
            del record["line"]
            click.echo(render.to_json({"file": path, **record}, pretty=False))
            continue
        if fmt == "text":
            click.echo(f"── {path}\n" + render.decision_text(decision, explain) + "\n")
        else:
            click.echo(render.to_json(decision, pretty=False))
    click.echo(f"{len(paths)} leads: {len(paths) - failed} decisions, {failed} errors", err=True)
    if failed:
        raise SystemExit(2)


# ---------------------------------------------------------------- expr


@cli.command("expr")
@click.argument("expression")
@click.option("--lead", "lead_file", metavar="FILE", help="A lead JSON file to evaluate against (default: an empty lead).")
@click.option("--now", metavar="ISO8601", help="The time `now` and days_since() use (default: the current UTC time).")
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
def expr_cmd(expression: str, lead_file: str | None, now: str | None, policies: str | None) -> None:
    """Print the JSON value of one expression, checked and evaluated exactly as in policies.

    Names: lead, now, score (the lead's score under the policy set), stage (its decided stage).

    \b
    Example:
      leadops expr 'lead.employees >= 50 and lead.country in ["AU", "NZ"]' --lead scenarios/leads/icp-enterprise-brisbane.json
    """
    when = parse_now(now)
    ps = open_policies(policies)
    raw: Any = {"id": "expr"}
    if lead_file:
        try:
            raw = json.loads(Path(lead_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            fail(f"lead file '{lead_file}' does not exist")
        except ValueError as exc:
            fail(f"{lead_file}: not valid JSON: {exc}")
    try:
        value = ps.evaluate_expression(expression, raw, when)
    except LeadopsError as exc:
        code = getattr(exc, "code", "")
        col = getattr(exc, "column", 0)
        where = f" (column {col})" if col else ""
        hint = getattr(exc, "hint", "")
        fail(f"{code + ': ' if code else ''}{getattr(exc, 'message', str(exc))}{where}" + (f"; hint: {hint}" if hint else ""))
    click.echo(json.dumps(value, ensure_ascii=False))


# ---- bundles, keys and the decision service ----


def _bundle_fail(exc: Exception) -> None:
    """A BundleError as one line, `error: <code>: <reason>`, exit 1."""
    fail(str(exc))


@cli.group("keys")
def keys_group() -> None:
    """Ed25519 key pairs that sign policy bundles.

    \b
    Example:
      leadops keys generate --out keys --key-id prod-2026
    """


@keys_group.command("generate")
@click.option("--out", "out_dir", metavar="DIR", default="keys", show_default=True, help="Directory for the PEM files.")
@click.option("--key-id", default="default", show_default=True, help="Key id: names the files and the JWS 'kid'.")
def keys_generate(out_dir: str, key_id: str) -> None:
    """Write a new Ed25519 key pair: DIR/ID.private.pem (mode 0600) and DIR/ID.public.pem.

    Keep the private key secret (a CI secret or a vault); give the public key (or a directory of them, for
    rotation) to every service and client that verifies bundles. Existing keys are never overwritten.

    \b
    Example:
      leadops keys generate --out keys --key-id prod-2026
    """
    from engine.bundle import BundleError
    from engine.signing import generate_keypair

    try:
        pair = generate_keypair(out_dir, key_id)
    except BundleError as exc:
        _bundle_fail(exc)
    except OSError as exc:
        fail(f"cannot write keys to {out_dir}: {exc.strerror}")
    click.echo(f"private key: {pair.private_path} (secret: never commit it)")
    click.echo(f"public key:  {pair.public_path} (key id {pair.key_id!r})")


@cli.group("bundle")
def bundle_group() -> None:
    """Build, sign and verify policy bundles (OPA-style .tar.gz with .manifest and .signatures.json).

    \b
    Example:
      leadops bundle build --out dist && leadops bundle sign dist/*.tar.gz --key keys/default.private.pem
    """


@bundle_group.command("build")
@click.option("--policies", "-p", metavar="DIR", default="policies", show_default=True, help="Policy directory.")
@click.option("--out", "out_dir", metavar="DIR", default="dist", show_default=True, help="Where the bundle is written.")
@click.option("--allow-dirty", is_flag=True, help="Build even if bundled files have uncommitted changes.")
@click.option("--sequence", type=click.IntRange(0, 2**63 - 1), help="Sequence to record in the manifest (signing uses it).")
def bundle_build(policies: str, out_dir: str, allow_dirty: bool, sequence: int | None) -> None:
    """Build a reproducible, unsigned bundle of the policy set and its lead schema.

    The policy set is validated first. The revision is the git commit SHA; a working tree whose bundled files
    have uncommitted changes is refused unless --allow-dirty (the revision is then <sha>+dirty.<hash>). The
    same revision always gives a byte-identical file: OUT/leadops-<revision>.tar.gz.

    \b
    Example:
      leadops bundle build --policies policies --out dist --sequence 42
    """
    from engine.bundle import BundleError, build_bundle, source_state
    from engine.client import _atomic_write

    ps = open_policies(policies)
    files = dict(ps.source_files)
    root = Path(policies).resolve().name
    state = source_state(policies, files)
    if state.dirty and not allow_dirty:
        changed = ", ".join(state.changed[:10]) + (" …" if len(state.changed) > 10 else "")
        fail(f"uncommitted changes in the policy set ({changed}); commit them or pass --allow-dirty")
    version = str(ps.describe().get("version") or "")
    try:
        data = build_bundle(files, state.revision, policy_version=version, sequence=sequence, policy_root=root)
    except BundleError as exc:
        _bundle_fail(exc)
    safe_rev = "".join(c if c.isalnum() or c in "-_." else "-" for c in state.revision)[:80]
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"leadops-{safe_rev}.tar.gz"
        _atomic_write(path, data)
    except OSError as exc:
        fail(f"cannot write the bundle to {out_dir}: {exc.strerror}")
    seq = f", sequence {sequence}" if sequence is not None else ""
    click.echo(f"{path}: revision {state.revision}, policy version {version or '-'}{seq}, {len(files)} files, "
               f"{len(data)} bytes (unsigned: run `leadops bundle sign {path} --key …`)")


@bundle_group.command("sign")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--key", "key_file", metavar="PRIVATE.pem", required=True, help="Ed25519 private key (PEM).")
@click.option("--key-id", help="Key id for the JWS 'kid' (default: the key file name without .private.pem).")
@click.option("--out", "out_file", metavar="FILE", help="Write the signed bundle here (default: sign in place).")
@click.option("--sequence", type=click.IntRange(0, 2**63 - 1),
              help="Monotonic sequence (default: the manifest's, else the current Unix time).")
@click.option("--expires-in", default="30d", show_default=True, help="Validity: e.g. 30d, 12h, 90m, 2w.")
@click.option("--scope", help="Optional scope claim that verifiers may require.")
def bundle_sign(bundle_file: str, key_file: str, key_id: str | None, out_file: str | None, sequence: int | None,
                expires_in: str, scope: str | None) -> None:
    """Sign a bundle: add .signatures.json (one EdDSA JWS over every file's SHA-256, a sequence and an expiry).

    \b
    Example:
      leadops bundle sign dist/leadops-3f2a.tar.gz --key keys/prod-2026.private.pem --sequence 43 --expires-in 14d
    """
    from engine.bundle import BundleError
    from engine.client import _atomic_write
    from engine.signing import key_id_from_filename, parse_duration, sign_bundle, verify_bundle

    try:
        delta = parse_duration(expires_in)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires-in") from None
    kid = key_id or key_id_from_filename(key_file)
    try:
        data = Path(bundle_file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle_file}: {exc.strerror}")
    try:
        signed = sign_bundle(data, key_file, kid, sequence, delta, scope=scope)
        from engine.signing import load_private_key

        public = load_private_key(key_file).public_key()
        verified = verify_bundle(signed, {kid: public}, scope=scope)  # never write a bundle that fails its own check
    except BundleError as exc:
        _bundle_fail(exc)
    target = Path(out_file or bundle_file)
    try:
        _atomic_write(target, signed)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    click.echo(f"{target}: signed with key {kid!r}, revision {verified.revision}, sequence {verified.sequence}, "
               f"expires {verified.expires_datetime().isoformat().replace('+00:00', 'Z')}")


@bundle_group.command("verify")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", metavar="PUBLIC.pem|DIR", required=True,
              help="Trusted public key, or a directory of them (key id = file name without .public.pem).")
@click.option("--min-sequence", type=click.IntRange(0, 2**63 - 1), help="Refuse bundles older than this sequence.")
@click.option("--scope", help="Require this scope claim.")
def bundle_verify(bundle_file: str, key_path: str, min_sequence: int | None, scope: str | None) -> None:
    """Verify a signed bundle: exit 0 with a one-line summary, or exit 1 with the precise reason.

    Checks the archive (no links, devices, absolute or '..' paths, size limits), the EdDSA signature and key id,
    every file's hash (nothing modified, added or removed), the expiry, the sequence and the manifest.

    \b
    Example:
      leadops bundle verify dist/leadops-3f2a.tar.gz --key keys/ --min-sequence 42
    """
    from engine.bundle import BundleError
    from engine.signing import verify_bundle

    try:
        data = Path(bundle_file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle_file}: {exc.strerror}")
    try:
        verified = verify_bundle(data, key_path, min_sequence=min_sequence, scope=scope)
    except BundleError as exc:
        _bundle_fail(exc)
    click.echo(f"{bundle_file}: {verified.summary()}")


@cli.command("serve")
@click.option("--bundle", "bundle_file", metavar="FILE", help="Serve this signed bundle (hot-swapped when it changes).")
@click.option("--watch", "watch_dir", metavar="DIR", help="Serve the newest valid bundle (*.tar.gz) in DIR.")
@click.option("--key", "key_path", metavar="PUBLIC.pem|DIR", required=True, help="Trusted public key(s).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8181, show_default=True, type=click.IntRange(0, 65535))
@click.option("--decision-log", metavar="FILE", help="Append every decision to this JSON Lines audit log.")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 3600),
              help="Seconds between checks for a new bundle.")
@click.option("--scope", help="Require this scope claim in bundle signatures.")
def serve_cmd(bundle_file: str | None, watch_dir: str | None, key_path: str, host: str, port: int,
              decision_log: str | None, poll_interval: float, scope: str | None) -> None:
    """Run the decision service (Starlette on uvicorn) from a verified bundle.

    Endpoints: POST /v1/decisions, GET /v1/bundle (ETag, 304), GET /v1/policy, GET /healthz, GET /metrics,
    GET /openapi.json. A changed bundle is verified and swapped in atomically; a bad one is logged and the
    last good one keeps serving.

    \b
    Example:
      leadops serve --bundle dist/leadops-3f2a.tar.gz --key keys/prod-2026.public.pem --port 8181 --decision-log decisions.jsonl
    """
    import logging

    from engine.bundle import BundleError
    from engine.server import create_app, run

    if (bundle_file is None) == (watch_dir is None):
        raise click.UsageError("give exactly one of --bundle FILE or --watch DIR")
    source = bundle_file or watch_dir
    assert source is not None
    if bundle_file is not None and not Path(bundle_file).is_file():
        fail(f"bundle file {bundle_file} does not exist")
    if watch_dir is not None and not Path(watch_dir).is_dir():
        fail(f"watch directory {watch_dir} does not exist")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(source, key_path, decision_log=decision_log, poll_interval=poll_interval, scope=scope)
    except BundleError as exc:
        _bundle_fail(exc)
    except OSError as exc:
        fail(f"cannot open the decision log {decision_log}: {exc.strerror}")
    click.echo(f"leadops decision service on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    run(app, host=host, port=port)


# ---- scenarios: test, record ----


@cli.command("test")
@click.argument("paths", nargs=-1, metavar="[PATHS…]")
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
@click.option("-k", "keyword", metavar="EXPR", help="Only scenarios whose name, file or tags match: words, and/or/not.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only scenarios with this tag (repeatable: any of).")
@click.option("--junit", "junit_file", metavar="FILE", help="Also write a JUnit XML report here (for CI).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--coverage", "show_coverage", is_flag=True, help="Report the policy rules no scenario exercises.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), metavar="PCT",
              help="Fail (exit 1) when rule coverage is below PCT percent (implies --coverage).")
@click.option("--update", is_flag=True, help="Rewrite the failing expectations to today's decisions; show what changed.")
@click.option("-v", "--verbose", is_flag=True, help="Also list passing and skipped scenarios.")
def test_cmd(paths: tuple[str, ...], policies: str | None, keyword: str | None, tags: tuple[str, ...],
             junit_file: str | None, fmt: str, show_coverage: bool, min_coverage: float | None, update: bool,
             verbose: bool) -> None:
    """Replay recorded lead scenarios against the policies on disk.

    Prints every failing scenario as `file:line: name`, then each expectation it missed (expected vs actual)
    and the rules that explain the difference; ends with `N passed, M failed`. Exit 1 on any failure.

    \b
    Example:
      leadops test scenarios/ -k "sla and not dst" --junit reports/scenarios.xml --coverage --min-coverage 100
    """
    from engine import coverage as cov_mod
    from engine import scenarios as sc

    ps = open_policies(policies)
    for p in paths:
        if not Path(p).exists():
            fail(f"scenario path '{p}' does not exist")
    found, diags = sc.load_all(list(paths) or ["scenarios"])
    try:
        chosen = sc.select(found, keyword, tags)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-k") from None
    for s in chosen:
        diags.extend(sc.check_scenario(ps, s))
    bad = {(d.location.file, d.location.line) for d in diags}
    runnable = [s for s in chosen if (s.file, s.line) not in bad]
    if not chosen and not diags:
        fail("no scenarios found" + (" matching the selection" if keyword or tags else
                                     f" in {', '.join(paths) or 'scenarios/'}"))
    results = sc.run(ps, runnable)
    coverage = None
    if show_coverage or min_coverage is not None:
        coverage = cov_mod.report(ps, ((r.decision, [e.path for e in r.scenario.expect])
                                       for r in results if r.decision is not None))
    if junit_file:
        Path(junit_file).parent.mkdir(parents=True, exist_ok=True)
        Path(junit_file).write_text(sc.junit_xml(results, diags), encoding="utf-8")
    changes = sc.update(results) if update else []
    failed = any(not r.ok for r in results) or bool(diags)
    below = coverage is not None and min_coverage is not None and coverage["coverage"] + 1e-9 < min_coverage
    if fmt == "json":
        out = sc.results_json(results, coverage)
        out["invalid"] = [d.to_dict() for d in diags]
        if update:
            out["updated"] = [vars(c) for c in changes]
        click.echo(render.to_json(out))
    else:
        if diags:
            click.echo(render.diagnostics_text(diags))
            click.echo("")
        for r in results:
            if not r.ok:
                click.echo(sc.failure_text(r) + "\n")
            elif verbose:
                click.echo(f"{'SKIP' if r.status == 'skipped' else 'PASS'} {r.scenario.where}: {r.scenario.name}"
                           + (f" ({r.error})" if r.status == "skipped" else ""))
        if changes:
            click.echo(f"updated {len(changes)} expectation(s) to today's decisions:")
            for c in changes:
                click.echo(f"  {c}")
            click.echo("")
        if coverage is not None:
            click.echo(cov_mod.report_text(coverage))
            if below:
                click.echo(f"coverage {coverage['coverage']:g}% is below the required {min_coverage:g}%")
        line = sc.summary_line(results)
        if diags:
            line += f" ({len({d.location.file for d in diags})} scenario file(s) with errors)"
        click.echo(line)
    if (failed and not (update and changes and not diags and all(r.status != "error" for r in results))) or below:
        raise SystemExit(1)


@cli.command("record")
@click.argument("lead_path", metavar="LEAD")
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
@click.option("--now", metavar="ISO8601", help="The decision time (default: the current UTC time).")
@click.option("--name", help="Scenario name (default: derived from the lead).")
@click.option("--to", "to_file", metavar="FILE", help="Append the scenario to this file (created if missing).")
def record_cmd(lead_path: str, policies: str | None, now: str | None, name: str | None, to_file: str | None) -> None:
    """Turn a lead into a regression scenario whose expectation is today's decision.

    Records the fields a reviewer cares about (score, grade, stage, route, SLA due dates, fired scoring rules),
    not the whole trace. Without --to the scenario is printed.

    \b
    Example:
      leadops record scenarios/leads/us-quote-request.json --now 2026-11-23T09:00:00+10:00 --name "US quote" --to scenarios/recorded.yaml
    """
    from engine import scenarios as sc

    when = parse_now(now)
    ps = open_policies(policies)
    single, _lines = _read_single_or_lines(lead_path)
    if single is None:
        fail(f"{lead_path}: record takes one lead (a JSON object)")
    label = name or f"lead {single.get('id', Path(lead_path).stem)} at {when.isoformat()}"
    try:
        text, _ = sc.record(ps, single, when, label, Path(lead_path) if lead_path != "-" else None,
                            Path(to_file) if to_file else None)
    except LeadError as exc:
        fail(f"invalid lead: {exc.field + ': ' if exc.field else ''}{exc.message}")
    except LeadopsError as exc:
        fail(str(exc))
    if to_file:
        click.echo(f"{to_file}: recorded scenario '{label}'")
    else:
        click.echo(text, nl=False)


def main() -> None:
    """Entry point: run the CLI; turn any leadops user error that slipped through into one line and exit 1."""
    try:
        cli.main(prog_name="leadops", standalone_mode=True)
    except LeadopsError as exc:  # pragma: no cover - commands catch their own errors
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # pragma: no cover
        raise SystemExit(130) from None
    except BrokenPipeError:  # pragma: no cover - `leadops eval … | head`
        os._exit(0)


if __name__ == "__main__":
    main()
