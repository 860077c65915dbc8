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
from engine import jsonstrict, render
from engine.errors import LeadError, LeadopsError, PolicyError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
POLICIES_HELP = "Policy directory, or REV:DIR to read it from a git revision (default: ./policies)."


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
    from engine.policyset import parse_instant

    try:
        return parse_instant(value.strip())
    except ValueError as exc:
        if str(exc) == "no UTC offset":
            example = value if "T" in value else f"{value}T09:00:00"
            raise click.BadParameter(f"'{value}' has no UTC offset; add one, e.g. {example}+10:00 or {example}Z",
                                     param_hint="--now") from None
        raise click.BadParameter(f"'{value}' is not an ISO 8601 date-time (e.g. 2026-11-23T09:00:00+10:00)",
                                 param_hint="--now") from None


def open_policies(spec: str | None, rev: str | None = None) -> "engine.PolicySet":
    """Load the policy set named by --policies DIR or REV:DIR (or --rev), turning PolicyError into located
    messages and exit 1."""
    from engine.gitops import open_policy_source

    try:
        return open_policy_source(spec, rev)
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None


def policy_options(command: Any) -> Any:
    """--policies DIR|REV:DIR and --rev REV, shared by every command that reads a policy set."""
    command = click.option("--rev", metavar="REV", help="Read the policies at this git revision (commit, branch, tag) "
                           "straight from git, without touching the working tree.")(command)
    return click.option("--policies", "-p", metavar="DIR|REV:DIR", help=POLICIES_HELP)(command)


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
@policy_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--mapping", "mappings", metavar="NAME|FILE", multiple=True,
              help="Also check this mapping (a preset or a mapping YAML file); repeat for several.")
@click.option("--fields", "field_lists", metavar="FILE", multiple=True,
              help="A custom field list (Pipedrive /dealFields JSON export): show each custom field key the "
              "mappings read with its human name.")
def validate(policies: str | None, rev: str | None, fmt: str, mappings: tuple[str, ...] = (),
             field_lists: tuple[str, ...] = ()) -> None:
    """Check a policy set: JSON Schemas, references, expressions and semantic rules.

    Every problem is reported as `file:line:column: error[CODE]: message` with a hint; exit 1 when any.

    \b
    Example:
      leadops validate --policies policies --format json
      leadops validate --mapping pipedrive --fields scenarios/crm/pipedrive-deal-fields.json
    """
    from engine.gitops import open_policy_source

    try:
        ps = open_policy_source(policies, rev)
    except PolicyError as exc:
        if fmt == "json":
            click.echo(render.diagnostics_json(exc.diagnostics))
        else:
            click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    info = ps.describe()
    from engine.scenarios import default_scenario_paths, validate_scenarios  # scenario files next to the policies

    on_disk = rev is None and ":" not in (policies or "")
    scenario_diags = validate_scenarios(ps, default_scenario_paths(policies)) if on_disk else []
    if on_disk:  # mapping files: <policies>/mappings/*.yaml (kind: mapping), checked against this policy set
        from engine.crm.mapping import validate_mapping_files

        scenario_diags = validate_mapping_files(policies or "policies", ps) + scenario_diags
    if scenario_diags:
        if fmt == "json":
            click.echo(render.diagnostics_json(scenario_diags, summary=info))
        else:
            click.echo(render.diagnostics_text(scenario_diags), err=True)
        raise SystemExit(1)
    custom = _custom_fields(ps, policies, mappings, field_lists, on_disk) if mappings or field_lists else None
    if custom is not None:
        info = {**info, "custom_fields": custom}
    if fmt == "json":
        click.echo(render.diagnostics_json([], valid=True, summary={**info, "cost": ps.cost.to_dict()}))
    else:
        click.echo(f"{policies or 'policies'}: valid — {info['name']} {info['version']} ({info['revision']}): "
                   f"{info['scoring_rules']} scoring rules, {info['stages']} stages, {info['routing_rules']} routing "
                   f"rules, {info['slas']} SLAs, {info['calendars']} calendars")
        click.echo(f"  {ps.cost.summary()}")
        for item in custom or []:
            name = f"({item['name']})" if item["name"] else "(not in the field list: a deleted field or a typo?)" \
                if field_lists else ""
            click.echo(f"  {item['mapping']}: {item['field']} <- {item['key']} {name}".rstrip())


def _custom_fields(ps: Any, policies: str | None, mappings: tuple[str, ...], field_lists: tuple[str, ...],
                   on_disk: bool) -> list[dict[str, Any]]:
    """validate --mapping/--fields: the custom field keys of the named mappings (and of the policy directory's
    own), with their names from the field lists. A mapping that does not compile is reported like a policy."""
    from engine.crm import InputError, load_mapping
    from engine.crm.fields import named_custom_fields, read_field_list
    from engine.crm.mapping import mapping_files

    names: dict[str, str] = {}
    try:
        for path in field_lists:
            names.update(read_field_list(path))
    except InputError as exc:
        fail(str(exc))
    specs = list(mappings) + ([str(p) for p in mapping_files(policies or "policies")] if on_disk else [])
    out: list[dict[str, Any]] = []
    for spec in specs:
        try:
            mapping = load_mapping(spec, ps, search=Path(policies or "policies") / "mappings")
        except PolicyError as exc:
            click.echo(render.diagnostics_text(exc.diagnostics), err=True)
            raise SystemExit(1) from None
        out.extend(named_custom_fields(mapping, names))
    return out


# ---------------------------------------------------------------- eval


def _is_object_line(text: str) -> bool:
    """Format sniffing only (is this line one whole JSON object?); the lead itself is read by `_lead_json`."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _lead_json(data: str | bytes, source: str) -> Any:
    """One lead document parsed as strict JSON (engine.jsonstrict): a repeated key, invalid UTF-8 or a lone
    surrogate is an error naming the problem, exit 1. NaN/Infinity are left to the lead schema (it names the field)."""
    try:
        return jsonstrict.loads(data, nonfinite=True)
    except ValueError as exc:
        fail(_json_problem(source, exc))


def _json_problem(source: str, exc: ValueError) -> str:
    path = getattr(exc, "path", "")
    where = f"{path}: " if path and path != getattr(exc, "key", "") else ""  # a repeated key's place, when nested
    return f"{source}: not valid JSON: {where}{exc}"


def _read_single_or_lines(source: str) -> tuple[Any, Any]:
    """(single lead document or None, iterator of (line_no, text) for JSON Lines or None).

    A file named *.jsonl / *.ndjson is JSON Lines. Otherwise: a first line that is a whole JSON object,
    followed by another such line, means JSON Lines (streamed); one object alone is a single lead; anything
    else is read whole as one JSON document (a pretty-printed lead, or an array of leads), and if it is not
    valid JSON either, as JSON Lines whose bad lines become error records.
    """
    import itertools

    if source == "-":
        stream = sys.stdin
    else:
        path = Path(source)
        if not path.is_file():
            fail(f"lead file '{source}' does not exist")
        stream = path.open("r", encoding="utf-8", errors="surrogateescape")
        if path.suffix in (".jsonl", ".ndjson"):
            return None, enumerate(stream, 1)
    head: list[tuple[int, str]] = []
    number = 0
    for line in stream:  # the first two non-blank lines decide the format
        number += 1
        if line.strip():
            head.append((number, line))
            if len(head) == 2:
                break
    if head and _is_object_line(head[0][1]):
        if len(head) == 1:
            return _lead_json(head[0][1], source), None
        return None, itertools.chain(head, enumerate(stream, number + 1))
    if len(head) == 2 and _is_object_line(head[1][1]):  # JSON Lines whose first line is broken
        return None, itertools.chain(head, enumerate(stream, number + 1))
    rest = stream.read()
    text = "".join(t for _, t in head) + rest
    if not text.strip():
        fail(f"{source}: no lead (the input is empty)")
    try:
        doc = jsonstrict.loads(text, nonfinite=True)
    except ValueError as exc:
        well_formed = isinstance(exc, jsonstrict.StrictJSONError) and exc.kind != "depth"  # a repeated key, not UTF-8
        if len(head) < 2 or well_formed:  # or one line that is not JSON: a broken single lead, not a batch
            fail(_json_problem(source, exc))
        return None, ((i, t) for i, t in enumerate(text.splitlines(), 1))  # not a document: JSON Lines
    if isinstance(doc, list):
        return None, ((i, json.dumps(x)) for i, x in enumerate(doc, 1))
    if not isinstance(doc, dict):
        fail(f"{source}: a lead must be a JSON object, got {type(doc).__name__}")
    return doc, None


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def batch_summary(total: int, failed: int) -> str:
    """The closing count of a batch: every input line is either a decision or an error record."""
    return f"{plural(total, 'lead')}: {plural(total - failed, 'decision')}, {plural(failed, 'error')}"


def lead_error_record(line: int, exc: Exception) -> dict[str, Any]:
    from engine.batch import error_record

    return error_record(line, exc)


# ---- leads as CRMs hold them: the options every command that reads leads shares (engine/crm) ----

CRM_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq")


def lead_source_options(command: Any) -> Any:
    """--mapping, --activities, --input-format, --encoding, --strict: spelled the same on eval, diff, record."""
    for option in reversed([
        click.option("--mapping", "mapping_spec", metavar="NAME|FILE",
                     help="Read source records through a mapping: a preset (hubspot, salesforce) or a kind: mapping file."),
        click.option("--activities", "activities_file", metavar="FILE",
                     help="Activity rows (calls, emails, meetings) joined to the leads by lead id through the mapping."),
        click.option("--input-format", type=click.Choice(["json", "jsonl", "csv", "parquet"]),
                     help="Format of the lead and activity files (default: from the extension)."),
        click.option("--encoding", metavar="NAME", help="Text encoding of CSV/JSON input (default: UTF-8, BOM or not)."),
        click.option("--strict", is_flag=True, help="A source field that no mapping rule names is an error, not a warning."),
    ]):
        command = option(command)
    return command


def uses_crm_input(paths: tuple[str, ...] | list[str], mapping_spec: str | None, activities_file: str | None,
                   input_format: str | None) -> bool:
    """Whether leads are read through engine/crm (a mapping, an activities file, CSV/Parquet, a forced format)."""
    return bool(mapping_spec or activities_file or input_format
                or any(str(p).lower().endswith(CRM_EXTENSIONS) for p in paths))


def open_crm_source(ps: "engine.PolicySet", path: str, mapping_spec: str | None, activities_file: str | None,
                    input_format: str | None, encoding: str | None, strict: bool,
                    policies: str | None = None) -> tuple[Any, Any]:
    """(mapping or None, joined activities or None) for one lead file; a bad mapping exits 1 with its diagnostics.
    A mapping NAME is looked up in <policies>/mappings/NAME.yaml first, then among the presets."""
    from engine.crm.pipeline import read_activities, resolve_mapping
    from engine.crm.records import EXTENSIONS, InputError, input_format as detect

    try:
        fmt = detect(path, input_format) if path != "-" else (input_format or "jsonl")
        from engine.gitops import split_spec

        policy_dir = split_spec(policies, None)[1]  # REV:DIR -> DIR: mapping files come from the working tree
        mapping = resolve_mapping(mapping_spec, ps, fmt, strict, policy_dir)
        if activities_file and mapping is None:
            fail("--activities needs --mapping (the mapping says how activity rows join leads)")
        act_format = None if Path(activities_file or "").suffix.lower() in EXTENSIONS else input_format
        acts = read_activities(activities_file, mapping, act_format, encoding) if activities_file else None
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    except InputError as exc:
        fail(str(exc))
    return mapping, acts


@cli.command("eval")
@click.argument("leads", nargs=-1, metavar="[LEAD…|-]")
@policy_options
@click.option("--now", metavar="ISO8601", help="The decision time (default: the current UTC time).")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option("--explain", is_flag=True, help="Include a trace of every rule considered and why it did or did not fire.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes for JSON Lines (0 = every core, 1 = no workers).")
@lead_source_options
@click.option("--out", "out_file", metavar="FILE", help="Write the decisions here (default: stdout, JSON Lines).")
@click.option("--output-format", type=click.Choice(["jsonl", "csv", "parquet", "crm-csv"]),
              help="jsonl, csv / parquet (flat decision columns) or crm-csv (the mapping's CRM import columns); "
                   "default: from the --out extension.")
def eval_cmd(leads: tuple[str, ...], policies: str | None, rev: str | None, now: str | None, fmt: str, explain: bool,
             jobs: int, mapping_spec: str | None, activities_file: str | None, input_format: str | None,
             encoding: str | None, strict: bool, out_file: str | None, output_format: str | None) -> None:
    """Evaluate one lead (a JSON object) or many (JSON Lines, CSV, Parquet, CRM exports) into decisions.

    A batch yields one output line per input record: a decision, or an error record with the line (row)
    number, the failing field and the reason, written in input order while every core works on the
    decisions (--jobs). Exit 2 when any record failed (partial), 1 on a bad single lead. With --mapping,
    CRM records (HubSpot, Salesforce, a mapping file) become leads first; source fields no rule uses are
    reported once per batch. --out writes JSON Lines, CSV or Parquet decision columns, or a CRM import CSV.

    \b
    Example:
      leadops eval scenarios/leads/icp-enterprise-brisbane.json --now 2026-11-23T09:00:00+10:00 --explain --format text
      leadops eval scenarios/crm/hubspot-contacts.csv --mapping hubspot --activities scenarios/crm/hubspot-engagements.csv --out decisions.csv
    """
    when = parse_now(now)
    ps = open_policies(policies, rev)
    if uses_crm_input(leads, mapping_spec, activities_file, input_format) or out_file or output_format:
        if len(leads) != 1:
            fail("give one lead file (or -) with --mapping, --activities, --out or a CSV/Parquet input")
        _eval_records(ps, leads[0], when, fmt, explain, jobs, mapping_spec, activities_file, input_format, encoding,
                      strict, out_file, output_format, policies)
        return
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
    from engine.batch import evaluate_lines

    total, failed = evaluate_lines(ps, lines, sys.stdout, when, explain=explain, fmt=fmt, jobs=jobs)
    click.echo(batch_summary(total, failed), err=True)
    if failed:
        raise SystemExit(2)


def _eval_records(ps: "engine.PolicySet", path: str, when: datetime, fmt: str, explain: bool, jobs: int,
                  mapping_spec: str | None, activities_file: str | None, input_format: str | None,
                  encoding: str | None, strict: bool, out_file: str | None, output_format: str | None,
                  policies: str | None = None) -> None:
    """A batch read through engine/crm: records -> (mapping) -> decisions in input order -> the chosen output."""
    from engine.crm.pipeline import Output, evaluate_source, output_format as out_format, unused_report
    from engine.crm.records import InputError

    if path != "-" and not Path(path).is_file():
        fail(f"lead file '{path}' does not exist")
    mapping, acts = open_crm_source(ps, path, mapping_spec, activities_file, input_format, encoding, strict, policies)
    try:
        target = Output(out_file, out_format(out_file, output_format), mapping)
        batch_fmt = "text" if fmt == "text" and target.batch_fmt == "json" else target.batch_fmt
        try:
            result = evaluate_source(ps, path, mapping, target, when, input_format=input_format if path != "-"
                                     else (input_format or "jsonl"), encoding=encoding, activities=acts,
                                     explain=explain, fmt=batch_fmt, jobs=jobs)
        finally:
            target.close()
    except InputError as exc:
        fail(str(exc))
    except LeadopsError as exc:
        fail(str(exc))
    summary = (f"{plural(result.total, 'record')} in = {plural(result.decisions, 'decision')} + "
               f"{plural(result.failed, 'error record')}")
    if target.errors_path and result.failed:
        summary += f" (error records in {target.errors_path})"
    click.echo(summary, err=True)
    report = unused_report(result.unused)
    if report:
        click.echo(report, err=True)
    for line in acts.report(activities_file or "") if acts is not None else []:
        click.echo(line, err=True)
    if result.failed or (acts is not None and acts.problems):
        raise SystemExit(2)


def _eval_files(ps: "engine.PolicySet", paths: tuple[str, ...], when: datetime, fmt: str, explain: bool) -> None:
    """Several lead files: one output line (or text block) per file, errors as records naming the file."""
    failed = 0
    for path in paths:
        try:
            raw = jsonstrict.loads(Path(path).read_bytes(), nonfinite=True)
            decision = ps.evaluate(raw, when, explain=explain).to_dict()
        except (OSError, ValueError, LeadError) as exc:
            failed += 1
            if not isinstance(exc, LeadError):
                exc = LeadError(str(exc), getattr(exc, "path", ""), "LEAD000")
            record = lead_error_record(0, exc)
            del record["line"]
            click.echo(render.to_json({"file": path, **record}, pretty=False))
            continue
        if fmt == "text":
            click.echo(f"── {path}\n" + render.decision_text(decision, explain) + "\n")
        else:
            click.echo(render.to_json(decision, pretty=False))
    click.echo(batch_summary(len(paths), failed), err=True)
    if failed:
        raise SystemExit(2)


# ---------------------------------------------------------------- expr


@cli.command("expr")
@click.argument("expression")
@click.option("--lead", "lead_file", metavar="FILE", help="A lead JSON file to evaluate against (default: an empty lead).")
@click.option("--now", metavar="ISO8601", help="The time `now` and days_since() use (default: the current UTC time).")
@policy_options
def expr_cmd(expression: str, lead_file: str | None, now: str | None, policies: str | None, rev: str | None) -> None:
    """Print the JSON value of one expression, checked and evaluated exactly as in policies.

    Names: lead, now, score (the lead's score under the policy set), stage (its decided stage). A rejected
    expression exits 1 with its error code, column and a hint. Put `--` before an expression that starts
    with '-' (leadops expr -- '-1 + 2').

    \b
    Example:
      leadops expr 'lead.employees >= 50 and lead.country in ["AU", "NZ"]' --lead scenarios/leads/icp-enterprise-brisbane.json
    """
    when = parse_now(now)
    ps = open_policies(policies, rev)
    raw: Any = {"id": "expr"}
    if lead_file:
        try:
            data = Path(lead_file).read_bytes()
        except FileNotFoundError:
            fail(f"lead file '{lead_file}' does not exist")
        raw = _lead_json(data, lead_file)
    try:
        value = ps.evaluate_expression(expression, raw, when)
    except LeadError as exc:
        fail(f"invalid lead: {exc.field + ': ' if exc.field else ''}{exc.message}")
    except LeadopsError as exc:
        code = getattr(exc, "code", "")
        col = getattr(exc, "column", 0)
        where = f" (column {col})" if col else ""
        hint = getattr(exc, "hint", "") or ("expressions are Python-like, e.g. lead.employees >= 50 and "
                                            "lead.country in [\"AU\", \"NZ\"]; see README: Expressions")
        fail(f"{code + ': ' if code else ''}{getattr(exc, 'message', str(exc))}{where}; hint: {hint}")
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
      leadops keys generate --out keys --name prod-2026 && leadops keys id keys/prod-2026.public.pem
    """


@keys_group.command("generate")
@click.option("--out", "out_dir", metavar="DIR", default="keys", show_default=True, help="Directory for the PEM files.")
@click.option("--name", "--key-id", "name", default="default", show_default=True,
              help="Names the files (NAME.private.pem, NAME.public.pem); the key id is the key's own thumbprint.")
def keys_generate(out_dir: str, name: str) -> None:
    """Write a new Ed25519 key pair: DIR/NAME.private.pem (mode 0600) and DIR/NAME.public.pem; print its key id.

    The key id (the JWS 'kid' of the signatures) is the key's RFC 7638 JWK thumbprint, so it never depends on
    a file name. Keep the private key secret (a CI secret or a vault) and out of git; give the public key (or a
    directory of them, for rotation) to every service and client that verifies bundles. Existing keys are
    never overwritten.

    \b
    Example:
      leadops keys generate --out keys --name prod-2026
    """
    from engine.bundle import BundleError
    from engine.signing import generate_keypair

    try:
        pair = generate_keypair(out_dir, name)
    except BundleError as exc:
        _bundle_fail(exc)
    except OSError as exc:
        fail(f"cannot write keys to {out_dir}: {exc.strerror}")
    click.echo(f"private key: {pair.private_path} (secret: never commit it)")
    click.echo(f"public key:  {pair.public_path}")
    click.echo(f"key id:      {pair.key_id} (the key's thumbprint; `bundle sign --key-id {pair.name}` uses the name)")


@keys_group.command("id")
@click.argument("key_files", metavar="KEY.pem…", nargs=-1, required=True, type=click.Path(dir_okay=False))
def keys_id(key_files: tuple[str, ...]) -> None:
    """Print the key id (RFC 7638 JWK thumbprint) of Ed25519 keys, public or private: the kid they sign with.

    \b
    Example:
      leadops keys id keys/prod-2026.public.pem
    """
    from engine.bundle import BundleError
    from engine.signing import is_private_pem, key_thumbprint, load_private_key, load_public_key

    for path in key_files:
        try:
            data = Path(path).read_bytes()
            key = load_private_key(data) if is_private_pem(data) else load_public_key(data)
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}")
        except BundleError as exc:
            fail(f"{path}: {exc.reason}")
        click.echo(f"{key_thumbprint(key)}  {path}")


@cli.group("bundle")
def bundle_group() -> None:
    """Build, sign and verify policy bundles (OPA-style .tar.gz with .manifest and .signatures.json).

    \b
    Example:
      leadops bundle build --out dist && leadops bundle sign dist/*.tar.gz --key keys/default.private.pem
    """


@bundle_group.command("build")
@click.option("--policies", "-p", metavar="DIR|REV:DIR", default="policies", show_default=True,
              help="Policy directory, or REV:DIR to bundle a git revision (no working tree involved).")
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

    from engine.gitops import split_spec

    ps = open_policies(policies)
    files = dict(ps.source_files)
    rev, directory = split_spec(policies, None)
    root = Path(directory).name if rev else Path(policies).resolve().name
    state = source_state(policies, files) if rev is None else None
    revision = ps.revision if state is None else state.revision
    if state is not None and state.dirty and not allow_dirty:
        changed = ", ".join(state.changed[:10]) + (" …" if len(state.changed) > 10 else "")
        fail(f"uncommitted changes in the policy set ({changed}); commit them or pass --allow-dirty")
    version = str(ps.describe().get("version") or "")
    try:
        data = build_bundle(files, revision, policy_version=version, sequence=sequence, policy_root=root)
    except BundleError as exc:
        _bundle_fail(exc)
    safe_rev = "".join(c if c.isalnum() or c in "-_." else "-" for c in revision)[:80]
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"leadops-{safe_rev}.tar.gz"
        _atomic_write(path, data)
    except OSError as exc:
        fail(f"cannot write the bundle to {out_dir}: {exc.strerror}")
    seq = f", sequence {sequence}" if sequence is not None else ""
    click.echo(f"{path}: revision {revision}, policy version {version or '-'}{seq}, {len(files)} files, "
               f"{len(data)} bytes (unsigned: run `leadops bundle sign {path} --key …`)")


@bundle_group.command("sign")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--key", "key_file", metavar="PRIVATE.pem", required=True, help="Ed25519 private key (PEM).")
@click.option("--key-id", help="Key id for the JWS 'kid' (default: the key's thumbprint; a name must match the verifiers' NAME.public.pem).")
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
    from engine.gitops import exposure_in_git
    from engine.signing import key_thumbprint, load_private_key, parse_duration, sign_bundle, verify_bundle

    if expires_in.strip().replace(".", "", 1).isdigit():
        raise click.BadParameter(f"'{expires_in}' has no unit; write e.g. 30d, 12h or 90m", param_hint="--expires-in")
    try:
        delta = parse_duration(expires_in)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires-in") from None
    if delta.total_seconds() < 60:
        raise click.BadParameter(f"'{expires_in}' is less than a minute; clients would refuse the bundle as "
                                 "expired almost at once (e.g. 30d)", param_hint="--expires-in")
    try:
        data = Path(bundle_file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle_file}: {exc.strerror}")
    try:
        private = load_private_key(key_file)
        kid = key_id or key_thumbprint(private)
        signed = sign_bundle(data, private, kid, sequence, delta, scope=scope)
        verified = verify_bundle(signed, {kid: private.public_key()}, scope=scope)  # never write a bundle that fails its own check
    except BundleError as exc:
        _bundle_fail(exc)
    exposure = exposure_in_git(key_file)
    if exposure:
        click.echo(f"warning: the private key {key_file} {exposure}: a push would publish it; add it to "
                   ".gitignore (e.g. keys/ or *.private.pem) or keep it outside the repository", err=True)
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
              help="Trusted public key, or a directory of them (matched by thumbprint, or by NAME.public.pem for named kids).")
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
    from engine.signing import load_trusted_keys, verify_bundle

    try:
        data = Path(bundle_file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {bundle_file}: {exc.strerror}")
    try:
        keys = load_trusted_keys(key_path, warn=lambda message: click.echo(f"warning: {message}", err=True))
        verified = verify_bundle(data, keys, min_sequence=min_sequence, scope=scope)
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
@click.option("--state-dir", metavar="DIR",
              help="Trust state kept across restarts: the highest verified sequence and the last good bundle "
                   "[default: $XDG_STATE_HOME/leadops/serve-<hash of the bundle path>].")
@click.option("--request-timeout", default=10.0, show_default=True, type=click.FloatRange(0.01, 3600),
              help="Seconds a decision request may take once its body is read (then 504).")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="Decision worker threads [default: min(4, CPUs)].")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the port (SO_REUSEPORT), one event loop each: use the cores. "
                   "Each writes its own decision log (--decision-log d.jsonl: d.0.jsonl, d.1.jsonl, ...).")
@click.option("--max-connections", default=1000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Open connections at most (idle ones are closed first when full).")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.01, 600),
              help="Seconds to receive a request's line and headers.")
@click.option("--keep-alive", default=5.0, show_default=True, type=click.FloatRange(0.01, 600),
              help="Seconds an idle keep-alive connection stays open.")
@click.option("--diagnostic-port", type=click.IntRange(1, 65535),
              help="Also serve /healthz and /metrics on this port, on their own thread (answers under any load).")
@click.option("--impact", "impact_file", metavar="FILE.json", help="Show this `leadops diff --format json` result on /ui/impact.")
@click.option("--log-personal-data", is_flag=True,
              help="Write personal lead fields (x-leadops-pii / format: email) into the decision log unmasked.")
def serve_cmd(bundle_file: str | None, watch_dir: str | None, key_path: str, host: str, port: int,
              decision_log: str | None, poll_interval: float, scope: str | None, state_dir: str | None,
              request_timeout: float, workers: int | None, processes: int, max_connections: int, header_timeout: float,
              keep_alive: float, diagnostic_port: int | None, impact_file: str | None, log_personal_data: bool) -> None:
    """Run the decision service (Starlette on uvicorn) from a verified bundle.

    Endpoints: POST /v1/decisions, GET /v1/bundle (ETag, 304), GET /v1/policy, GET /healthz, GET /metrics,
    GET /openapi.json. A changed bundle is verified and swapped in atomically; a bad one is logged and the
    last good one keeps serving. The trusted sequence and last good bundle persist in --state-dir, so a
    restart never rolls back and starts from the last good bundle when the configured one is missing or broken.
    SIGHUP reopens the decision log (logrotate). --processes N serves from N processes (one per core).
    Read-only pages for people at /ui/: the handbook, try a lead, impact reports.

    \b
    Example:
      leadops serve --bundle dist/leadops-3f2a.tar.gz --key keys/prod-2026.public.pem --port 8181 --decision-log decisions.jsonl
    """
    import logging

    from engine.bundle import BundleError
    from engine.connections import ConnectionLimits
    from engine.auditlog import DecisionLog, process_log_path
    from engine.server import DEFAULT_WORKERS, create_app, run
    from engine.trust_state import TrustState, default_state_dir

    if (bundle_file is None) == (watch_dir is None):
        raise click.UsageError("give exactly one of --bundle FILE or --watch DIR")
    source = bundle_file or watch_dir
    assert source is not None
    state = Path(state_dir) if state_dir else default_state_dir(source)
    if bundle_file is not None and not Path(bundle_file).exists() and TrustState(state).last_good() is None:
        fail(f"bundle file {bundle_file} does not exist, and {state} holds no last good bundle to start from")
    if watch_dir is not None and Path(watch_dir).exists() and not Path(watch_dir).is_dir():
        fail(f"--watch {watch_dir} is not a directory")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # --processes: one decision log per process (decisions.jsonl -> decisions.0.jsonl, decisions.1.jsonl, ...)
    log_paths = [decision_log] if processes == 1 or not decision_log else \
        [str(process_log_path(decision_log, i)) for i in range(processes)]
    try:
        app = create_app(source, key_path, decision_log=log_paths[0], poll_interval=poll_interval, scope=scope,
                         state_dir=state, request_timeout=request_timeout,
                         workers=workers or DEFAULT_WORKERS, log_personal_data=log_personal_data)
        process_logs = [DecisionLog(path) for path in log_paths[1:] if path]
    except BundleError as exc:
        _bundle_fail(exc)
    except OSError as exc:
        fail(f"cannot open {exc.filename or 'the decision log or state directory'}: {exc.strerror}")
    if impact_file:
        from engine.web import attach_impact_report

        try:
            attach_impact_report(app, impact_file)
        except ValueError as exc:
            fail(str(exc))
    service = app.state.service
    if service.active is None:
        click.echo(f"warning: no verified bundle yet ({service.last_error or 'nothing at ' + source}); "
                   "answering 503 until a valid bundle appears", err=True)
    limits = ConnectionLimits(max_connections=max_connections, header_timeout=header_timeout, keep_alive=keep_alive)
    click.echo(f"leadops decision service on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    run(app, host=host, port=port, limits=limits, diagnostic_port=diagnostic_port, processes=processes,
        process_logs=process_logs)


# ---- Spark: whole tables with a signed bundle ----


@cli.group("spark")
def spark_group() -> None:
    """Decide or compare whole tables on Apache Spark with a signed bundle (also `python -m engine.spark`).

    \b
    Example:
      leadops spark decide --input leads.parquet --bundle dist/leadops.tar.gz --key keys/ci.public.pem --as-of 2026-11-23T09:00:00+10:00 --out decisions/
    """


def spark_options(command: Any) -> Any:
    """The input, key, time and session options every `leadops spark` command shares."""
    for option in reversed([
        click.option("--input", "input_path", metavar="PATH", required=True,
                     help="Leads: Parquet file or directory, Delta table, JSON Lines (.jsonl) or a CRM CSV export."),
        click.option("--input-format", type=click.Choice(["jsonl", "parquet", "delta", "csv"]),
                     help="Say the input's format when the path does not (default: from the extension or content)."),
        click.option("--key", "key_path", metavar="PUBLIC.pem|DIR", required=True, help="Trusted public key(s)."),
        click.option("--as-of", "as_of", metavar="ISO8601", required=True,
                     help="The decision time, with a UTC offset (never the cluster's clock or time zone)."),
        click.option("--mapping", metavar="NAME|FILE",
                     help="Read CRM rows through a mapping: a preset (hubspot, salesforce) or a mapping YAML file."),
        click.option("--activities", "activities_path", metavar="PATH",
                     help="An events table (Parquet, Delta, JSON Lines, CSV), one row per activity, joined by lead id."),
        click.option("--activities-key", default="lead_id", show_default=True,
                     help="The events table's lead id column."),
        click.option("--master", metavar="URL", help="Spark master, e.g. local[4] (default: spark-submit's or the cluster's)."),
    ]):
        command = option(command)
    return command


def _spark_as_of(as_of: str) -> datetime:
    """--as-of, parsed as --now is (a usage error, exit 2, when it has no offset)."""
    try:
        return parse_now(as_of)
    except click.BadParameter as exc:
        exc.param_hint = "--as-of"
        raise


def _spark_run(call: Any) -> Any:
    """`call()`, with a rejected bundle (`error: <code>: <reason>`), a policy or mapping with located diagnostics,
    or any other leadops user error as one message, exit 1."""
    try:
        return call()
    except PolicyError as exc:
        _git_fail(exc)
    except LeadopsError as exc:
        fail(str(exc))


def _spark_inputs(input_path: str, input_format: str | None, activities_path: str | None,
                  master: str | None) -> tuple[Any, Any, Any]:
    """(session, lead input, events frame or None) with user errors as one line and exit 1."""
    from engine.spark import local_session, read_table

    spark = local_session(master, shuffle_partitions=2 if master and master.startswith("local") else None)
    try:
        leads = read_table(spark, input_path, input_format)
        events = read_table(spark, activities_path, text=False).df if activities_path else None
    except LeadopsError as exc:
        fail(str(exc))
    return spark, leads, events


@spark_group.command("decide")
@spark_options
@click.option("--bundle", "bundle_file", metavar="FILE", required=True, help="The signed policy bundle.")
@click.option("--out", "out_dir", metavar="DIR", required=True, help="Parquet output: decisions in DIR, failed rows in DIR/errors.")
@click.option("--overwrite", is_flag=True, help="Replace DIR if it exists (default: refuse).")
def spark_decide_cmd(input_path: str, input_format: str | None, key_path: str, as_of: str, mapping: str | None,
                     activities_path: str | None, activities_key: str, master: str | None, bundle_file: str,
                     out_dir: str, overwrite: bool) -> None:
    """Decide every lead of a table with a signed bundle; write decisions and failed rows as Parquet.

    The bundle is verified here and again on every worker (exit 1 before anything is written when it fails).
    Each output row has the flat decision columns (lead_id, score, grade, stage, owner, team, queue, first SLA …,
    policy_revision), decision (the JSON `leadops eval` prints), bundle_sha256 and as_of; failed rows go to
    DIR/errors with the reason. Ends with the counts: leads in = decisions + errors
    (exit 2 when some rows failed).

    \b
    Example:
      leadops spark decide --input leads.jsonl --bundle dist/leadops.tar.gz --key keys/ci.public.pem --as-of 2026-11-23T09:00:00+10:00 --out decisions/ --master local[2]
    """
    from engine.spark import decide

    when = _spark_as_of(as_of)
    if not Path(bundle_file).is_file():
        fail(f"bundle file {bundle_file} does not exist")
    if not overwrite and "://" not in out_dir and Path(out_dir).exists():
        fail(f"{out_dir} already exists; choose another --out or add --overwrite")
    spark, leads, events = _spark_inputs(input_path, input_format, activities_path, master)
    result = _spark_run(lambda: decide(leads.df, bundle_file, key_path, when, mapping, events,
                                       activities_key=activities_key))
    try:
        decided, failed = result.write(out_dir, overwrite=overwrite)
    except Exception as exc:  # noqa: BLE001 - Spark wraps user-visible causes (existing DIR, unreadable input)
        lines = str(exc).splitlines() or [type(exc).__name__]
        cause = next((line.split("Error: ", 1)[1] for line in reversed(lines)  # a worker's BundleError / LeadopsError
                      if line.startswith("engine.") and "Error: " in line), lines[0])
        fail(f"writing {out_dir} failed: {cause}")
    rows_in = result.rows_in()
    click.echo(f"{plural(rows_in, 'lead')} in: {plural(decided, 'decision')} in {out_dir}, "
               f"{plural(failed, 'error')} in {out_dir.rstrip('/')}/errors", err=True)
    if events is not None and (unjoined := result.unjoined_activities()):
        click.echo(f"{plural(unjoined, 'activity row')} of {activities_path} joined no lead (no lead id, or an id "
                   "not in the input)", err=True)
    if rows_in != decided + failed:
        fail(f"counts do not reconcile: {rows_in} in, {decided + failed} out")
    if failed:
        raise SystemExit(2)


@spark_group.command("impact")
@spark_options
@click.option("--base", "base_bundle", metavar="FILE", required=True, help="The signed bundle of the base revision.")
@click.option("--head", "head_bundle", metavar="FILE", required=True, help="The signed bundle of the changed revision.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--max-changed", type=click.FloatRange(0, 100), metavar="PCT",
              help="Exit 1 when more than PCT% of leads change stage or route (default: the policies' guard).")
@click.option("--acknowledge", is_flag=True, help="The blast radius is intended: report it but do not fail.")
@click.option("--examples", type=click.IntRange(0, 100), default=5, show_default=True, help="Example leads per kind of change.")
def spark_impact_cmd(input_path: str, input_format: str | None, key_path: str, as_of: str, mapping: str | None,
                     activities_path: str | None, activities_key: str, master: str | None, base_bundle: str,
                     head_bundle: str, fmt: str,
                     max_changed: float | None, acknowledge: bool, examples: int) -> None:
    """The impact of a policy change on every lead of a table: `leadops diff`'s report from two signed bundles.

    \b
    Example:
      leadops spark impact --input leads.parquet --base dist/main.tar.gz --head dist/pr-42.tar.gz --key keys/ --as-of 2026-11-23T09:00:00+10:00 --format markdown
    """
    from engine.spark import impact

    when = _spark_as_of(as_of)
    for path in (base_bundle, head_bundle):
        if not Path(path).is_file():
            fail(f"bundle file {path} does not exist")
    spark, leads, events = _spark_inputs(input_path, input_format, activities_path, master)
    report = _spark_run(lambda: impact(leads.df, base_bundle, head_bundle, key_path, when, mapping=mapping,
                                       activities=events, activities_key=activities_key, max_examples=examples,
                                       max_changed=max_changed, acknowledge=acknowledge, source=leads.source))
    click.echo(render.to_json(report.to_dict()) if fmt == "json" else report.markdown() if fmt == "markdown"
               else report.text(), nl=fmt != "markdown")
    if report.blocked:
        click.echo(f"error: {report.guard_line()}", err=True)
        raise SystemExit(1)
    if report.impact is not None and report.impact.errors:
        click.echo(f"{plural(report.impact.errors, 'lead')} could not be evaluated (see the report); exit 2 = partial",
                   err=True)
        raise SystemExit(2)


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
    runnable, invalid = [], []
    for s in chosen:
        problems = sc.check_scenario(ps, s)
        if problems:
            invalid.append(sc.Result(s, "error", error="\n  ".join(d.format() for d in problems)))
        else:
            runnable.append(s)
    if not chosen and not diags:
        fail("no scenarios found" + (" matching the selection" if keyword or tags else
                                     f" in {', '.join(paths) or 'scenarios/'}"))
    results = sc.run(ps, runnable) + invalid
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
            click.echo(f"updated {len(changes)} expectation(s) to today's decisions (run again to confirm):")
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
    if failed or below:
        raise SystemExit(1)


@cli.command("record")
@click.argument("lead_path", metavar="LEAD")
@click.option("--policies", "-p", metavar="DIR", help=POLICIES_HELP)
@click.option("--now", metavar="ISO8601", help="The decision time (default: the current UTC time).")
@click.option("--name", help="Scenario name (default: derived from the lead).")
@click.option("--to", "to_file", metavar="FILE", help="Append the scenario to this file (created if missing).")
@lead_source_options
@click.option("--row", type=click.IntRange(min=1), help="With a CRM file of several records: the row to record.")
def record_cmd(lead_path: str, policies: str | None, now: str | None, name: str | None, to_file: str | None,
               mapping_spec: str | None, activities_file: str | None, input_format: str | None, encoding: str | None,
               strict: bool, row: int | None) -> None:
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
    mapped = uses_crm_input((lead_path,), mapping_spec, activities_file, input_format) or bool(row)
    if mapped:  # the mapped lead is written inline: the scenario must not depend on the export file
        single = _one_mapped_lead(ps, lead_path, row, mapping_spec, activities_file, input_format, encoding, strict,
                                  policies)
    else:
        single, _lines = _read_single_or_lines(lead_path)
    if single is None:
        fail(f"{lead_path}: record takes one lead (a JSON object)")
    label = name or f"lead {single.get('id', Path(lead_path).stem)} at {when.isoformat()}"
    try:
        text, _ = sc.record(ps, single, when, label, Path(lead_path) if lead_path != "-" and not mapped else None,
                            Path(to_file) if to_file else None)
    except LeadError as exc:
        fail(f"invalid lead: {exc.field + ': ' if exc.field else ''}{exc.message}")
    except LeadopsError as exc:
        fail(str(exc))
    if to_file:
        click.echo(f"{to_file}: recorded scenario '{label}'")
    else:
        click.echo(text, nl=False)


def _one_mapped_lead(ps: "engine.PolicySet", path: str, row: int | None, mapping_spec: str | None,
                     activities_file: str | None, input_format: str | None, encoding: str | None, strict: bool,
                     policies: str | None) -> dict[str, Any]:
    """The one lead `record` takes from a CRM file: its only record, or the record at --row, mapped."""
    from engine.crm.pipeline import source_items
    from engine.crm.records import InputError

    if path != "-" and not Path(path).is_file():
        fail(f"lead file '{path}' does not exist")
    mapping, acts = open_crm_source(ps, path, mapping_spec, activities_file, input_format, encoding, strict, policies)
    chosen = None
    try:
        for number, item in source_items(path, mapping, input_format, encoding, acts):
            if row is None and chosen is not None:
                fail(f"{path}: record takes one lead; the file has several records: pick one with --row N")
            if row is None or number == row:
                chosen = (number, item)
                if row is not None:
                    break
    except InputError as exc:
        fail(str(exc))
    if chosen is None:
        fail(f"{path}: no record{f' at row {row}' if row else ''}")
    number, item = chosen
    try:
        if isinstance(item, LeadError):
            raise item
        record, joined = item if isinstance(item, tuple) else (item, None)
        return mapping.to_lead(record, joined, number) if mapping is not None else record
    except LeadError as exc:
        fail(f"{path}: row {number}: {exc.message}")
    raise AssertionError("unreachable")


# ---- scorecard: report ----


@cli.command("report")
@click.argument("leads", nargs=-1, required=True, metavar="LEADS…|-")
@policy_options
@click.option("--now", metavar="ISO8601", required=True, help="The report time: SLAs unanswered by then are open, at risk or breached.")
@click.option("--since", metavar="DATE", help="Only clock starts (and lead cohorts) on or after this date, e.g. 2026-10-01.")
@click.option("--within", metavar="DURATION", default="4h", show_default=True,
              help="The at-risk queue: unanswered SLAs due within this much business time.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--html", "html_file", metavar="FILE", help="Also write the report as one self-contained HTML page with charts.")
@click.option("--facts", "facts_file", metavar="FILE.csv|FILE.parquet", help="Also write the SLA fact table.")
@click.option("--mapping", metavar="NAME|FILE", help="LEADS are CRM exports (CSV, JSON, JSON Lines, Parquet) read through "
              "this mapping: a preset (hubspot, salesforce) or a mapping YAML file.")
@click.option("--activities", "activities_file", metavar="FILE", help="With --mapping: the activity export, joined to the leads.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes (0 = every core, 1 = no workers).")
def report_cmd(leads: tuple[str, ...], policies: str | None, rev: str | None, now: str, since: str | None, within: str,
               fmt: str, html_file: str | None, facts_file: str | None, mapping: str | None,
               activities_file: str | None, jobs: int) -> None:
    """The shared scorecard: SLA attainment, speed to lead and the funnel from leads' recorded history.

    LEADS are JSON Lines files (or - for stdin) of leads with their history: stage_history (stage entries),
    owner_history (assignments), created_at and activities with actor, direction and outcome. Every stage entry
    that starts an SLA clock becomes a row of the fact table (one per lead x SLA), judged by the policy revision
    in force at the clock start (the git history of --policies; --rev or REV:DIR forces one). Which activities
    answer an SLA is declared by `touched_by` in slas.yaml. Exit 2 when some leads could not be read (the report
    counts them and lists why), 1 on a bad policy or option value.

    \b
    Example:
      leadops report examples/report/leads.jsonl --rev HEAD --now 2026-11-27T17:00:00+10:00 --html report.html
    """
    from datetime import date

    from engine.calendar import parse_duration
    from engine.report import report

    when = parse_now(now)
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise click.BadParameter(f"'{since}' is not a date; write YYYY-MM-DD, e.g. 2026-10-01", param_hint="--since") from None
    try:
        window = parse_duration(within)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--within") from None
    if facts_file and not facts_file.lower().endswith((".csv", ".parquet")):
        raise click.BadParameter(f"'{facts_file}' must end in .csv or .parquet", param_hint="--facts")
    if activities_file and not mapping:
        raise click.BadParameter("needs --mapping (activities come from a CRM export)", param_hint="--activities")
    for f in (*leads, *([activities_file] if activities_file else [])):
        if f != "-" and not Path(f).is_file():
            fail(f"lead file '{f}' does not exist")
    try:
        card = report(list(leads), when, policies=policies, rev=rev, since=since_day, within=window, jobs=jobs,
                      mapping=mapping, activities=activities_file)
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    except (OSError, LeadopsError) as exc:
        fail(f"cannot read leads: {exc}")
    click.echo(render.to_json(card.to_dict()) if fmt == "json" else card.text(), nl=fmt == "json")
    try:
        if html_file:
            card.write_html(html_file)
        if facts_file:
            card.write_facts(facts_file)
    except OSError as exc:
        fail(f"cannot write the report: {exc}")
    click.echo(f"{plural(card.leads, 'lead')}: {plural(card.facts.num_rows, 'SLA row')}, "
               f"{plural(len(card.errors), 'error')}", err=True)
    if card.errors:
        raise SystemExit(2)


# ---- ga4: web events as activities ----


@cli.command("ga4")
@click.argument("leads", nargs=-1, required=True, metavar="LEADS…")
@policy_options
@click.option("--events", "event_files", metavar="FILE", multiple=True, required=True,
              help="A GA4 BigQuery export (events_YYYYMMDD as .parquet or .jsonl); repeat for several days.")
@click.option("--events-mapping", default="ga4", show_default=True, metavar="NAME|FILE",
              help="Which events count and how: the ga4 preset or a mapping file of your own.")
@click.option("--join-table", metavar="FILE", help="user_pseudo_id -> lead_id (CSV, JSON Lines or Parquet) for "
              "visitors whose user_id is neither the lead id nor the hashed e-mail.")
@click.option("--mapping", metavar="NAME|FILE", help="LEADS are CRM exports read through this mapping.")
@click.option("--activities", "activities_file", metavar="FILE", help="With --mapping: the CRM's activity export.")
@click.option("--out", "out_file", metavar="FILE", help="Write the leads here (JSON Lines; default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The accounting on stderr: readable lines or one JSON object.")
def ga4_cmd(leads: tuple[str, ...], policies: str | None, rev: str | None, event_files: tuple[str, ...],
            events_mapping: str, join_table: str | None, mapping: str | None, activities_file: str | None,
            out_file: str | None, fmt: str) -> None:
    """Google Analytics 4 events as lead activities: leads (native or a CRM export) out as JSON Lines with the
    events the mapping counts added to their activities, and their source from the first session's traffic
    source where the CRM gave none. Pipe the result into `leadops eval -` or `leadops report -`.

    An event joins a lead by user_id (the lead id, or the SHA-256 of its trimmed lower-case e-mail), else by
    user_pseudo_id through --join-table. Events without a lead are counted and reported on stderr, never dropped
    silently. Exit 2 when some leads or events could not be read or mapped, 1 on a bad mapping or file.

    \b
    Example:
      leadops ga4 scenarios/crm/pipedrive-leads.json --mapping pipedrive --events scenarios/ga4/events_20261120.jsonl --join-table scenarios/ga4/join.csv | leadops eval - --now 2026-11-23T09:00:00+10:00
    """
    from engine.crm import InputError, load_mapping
    from engine.crm.ga4 import join_web_events, read_join_table
    from engine.crm.pipeline import source_items
    from engine.gitops import open_policy_source

    try:
        ps = open_policy_source(policies, rev)
        web = load_mapping(events_mapping, ps, search=Path((policies or "policies").split(":")[-1]) / "mappings")
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    if web.activity_key is None:
        fail(f"--events-mapping {events_mapping}: the mapping has no activities section (which events count)")
    for f in (*leads, *event_files, *(x for x in (activities_file, join_table) if x)):
        if not Path(f).is_file():
            fail(f"file '{f}' does not exist")
    records, problems = [], []
    for path in leads:
        lead_mapping, acts = open_crm_source(ps, path, mapping, activities_file, None, None, False, policies)
        try:
            for row, item in source_items(path, lead_mapping, None, None, acts):
                try:
                    if isinstance(item, LeadError):
                        raise item
                    record, joined = item if isinstance(item, tuple) else (item, None)
                    lead = lead_mapping.to_lead(record, joined, row) if lead_mapping is not None else record
                    if not isinstance(lead, dict) or not lead.get("id"):
                        raise LeadError("a lead must be a JSON object with an id", "id")
                    records.append(lead)
                except LeadError as exc:
                    problems.append(f"{path}: row {row}: {exc.message}")
        except InputError as exc:
            fail(str(exc))
    try:
        stats = join_web_events(records, list(event_files), web, read_join_table(join_table) if join_table else None)
    except InputError as exc:
        fail(str(exc))
    text = "".join(json.dumps(lead, ensure_ascii=False, separators=(",", ":")) + "\n" for lead in records)
    try:
        if out_file:
            Path(out_file).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror}")
    if fmt == "json":
        click.echo(json.dumps({**stats.to_dict(), "leads": len(records), "lead_errors": problems}), err=True)
    else:
        for line in [*problems[:10], *stats.summary()]:
            click.echo(line, err=True)
    if problems or stats.unreadable or stats.errors:
        raise SystemExit(2)


# ---- notify: Slack ----


@cli.command("notify")
@click.argument("leads", nargs=-1, required=True, metavar="LEADS…|-")
@policy_options
@click.option("--now", metavar="ISO8601", required=True, help="The time the run judges SLAs at (the cron job's time).")
@click.option("--since", metavar="DATE", help="Only clock starts on or after this date (a first run need not post the past).")
@click.option("--mapping", metavar="NAME|FILE", help="LEADS are CRM exports read through this mapping (a preset or a mapping YAML file).")
@click.option("--activities", "activities_file", metavar="FILE", help="With --mapping: the activity export, joined to the leads.")
@click.option("--stage", "stages", metavar="STAGE", multiple=True, default=("sql",), show_default=True,
              help="Entries into this stage are announced as assignments (repeat for several).")
@click.option("--state", "state_file", metavar="FILE", default=".leadops-notify.json", show_default=True,
              help="Records what was sent (locked, replaced atomically): reruns never post an event twice.")
@click.option("--webhook-file", metavar="FILE", help="File holding the incoming webhook URL, or `#channel URL` lines, one "
              "per team channel (default: $LEADOPS_SLACK_WEBHOOK_URL); never inside the policy directory.")
@click.option("--dry-run", is_flag=True, help="Print the messages; post nothing, record nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker processes for reading leads (0 = every core).")
def notify_cmd(leads: tuple[str, ...], policies: str | None, rev: str | None, now: str, since: str | None,
               mapping: str | None, activities_file: str | None, stages: tuple[str, ...], state_file: str,
               webhook_file: str | None, dry_run: bool, fmt: str, jobs: int) -> None:
    """Tell sales at once in Slack: each new SQL assigned (who, which lead, due time), each SLA at its warning
    threshold and each SLA breached and unanswered (with the manager to escalate to), one Block Kit message per
    event, addressed to the team's `slack_channel` of teams.yaml.

    Reads LEADS as `leadops report` does. Posts to a Slack incoming webhook about one message a second, waits
    out 429s (Retry-After) and retries 5xx with backoff, a bounded number of times. The state file makes it
    safe to run from cron: an event already sent is never sent again, and overlapping runs wait for each other.
    Exit 2 when a message could not be delivered or some leads could not be read (the next run retries the
    messages), 1 on a bad policy, option, state file or webhook.

    \b
    Example:
      leadops notify examples/report/leads.jsonl --rev HEAD --now 2026-11-25T11:00:00+10:00 --since 2026-11-20 --dry-run
    """
    from datetime import date

    from engine.notify import notify
    from engine.notify.slack import WebhookError, Webhooks, webhook_urls
    from engine.notify.state import StateError

    when = parse_now(now)
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise click.BadParameter(f"'{since}' is not a date; write YYYY-MM-DD, e.g. 2026-11-01", param_hint="--since") from None
    if activities_file and not mapping:
        raise click.BadParameter("needs --mapping (activities come from a CRM export)", param_hint="--activities")
    for f in (*leads, *([activities_file] if activities_file else [])):
        if f != "-" and not Path(f).is_file():
            fail(f"lead file '{f}' does not exist")
    hook = None
    try:
        if not dry_run:
            hook = Webhooks(webhook_urls(webhook_file, policies or "policies"))
        run = notify(list(leads), when, policies=policies, rev=rev, mapping=mapping, activities=activities_file,
                     since=since_day, stages=stages, state=state_file, webhook=hook, dry_run=dry_run, jobs=jobs)
    except PolicyError as exc:
        click.echo(render.diagnostics_text(exc.diagnostics), err=True)
        raise SystemExit(1) from None
    except (WebhookError, StateError) as exc:
        fail(str(exc))
    except (OSError, LeadopsError) as exc:
        fail(f"cannot read leads: {exc}")
    finally:
        if hook is not None:
            hook.close()
    if fmt == "json":
        click.echo(render.to_json(run.to_dict()))
    else:
        click.echo(run.text(), nl=False)
    if run.failed or run.errors:
        raise SystemExit(2)


# ---- git workflow: diff, approvals, codeowners, init ----


def _git_fail(exc: PolicyError) -> None:
    click.echo(render.diagnostics_text(exc.diagnostics), err=True)
    raise SystemExit(1) from None


@cli.command("diff")
@click.option("--base", "base_rev", metavar="REV", required=True, help="The revision to compare with (e.g. main, origin/main).")
@click.option("--head", "head_rev", metavar="REV", help="The changed revision (default: the working tree).")
@click.option("--policies", "-p", metavar="DIR", default="policies", show_default=True, help="Policy directory (same path at both revisions).")
@click.option("--leads", "lead_files", metavar="FILE", multiple=True,
              help="Leads to compare on: .json (one lead) or .jsonl / - (one per line); repeatable (default: the leads of the scenarios).")
@click.option("--now", metavar="ISO8601", help="The decision time for both revisions (default: the current UTC time).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]), default="text", show_default=True,
              help="html: one self-contained page (inline CSS, no scripts, opens offline).")
@click.option("--redact", is_flag=True, help="Example leads show initials instead of people's names.")
@click.option("--max-changed", type=click.FloatRange(0, 100), metavar="PCT",
              help="Exit 1 when more than PCT% of leads change stage or route (default: guard.max_changed_percent of leadops.yaml).")
@click.option("--acknowledge", is_flag=True, help="The blast radius is intended: report it but do not fail (CI sets it from a PR label).")
@click.option("--examples", type=click.IntRange(0, 100), default=5, show_default=True, help="Example leads per kind of change.")
@click.option("--jobs", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Worker processes for large lead files (0: automatic).")
@lead_source_options
def diff_cmd(base_rev: str, head_rev: str | None, policies: str, lead_files: tuple[str, ...], now: str | None, fmt: str,
             redact: bool, max_changed: float | None, acknowledge: bool, examples: int, jobs: int,
             mapping_spec: str | None, activities_file: str | None, input_format: str | None, encoding: str | None,
             strict: bool) -> None:
    """Semantic diff and impact report of a policy change, from git revisions.

    Lists the policy changes in words (the handbook's sentences that change first; then rules added, removed,
    re-ordered; points, thresholds, windows, SLA hours, calendars) and evaluates both revisions on the same
    leads: the funnel per stage and week, each team's and rep's leads and SLA clocks, stage from→to, route,
    grade, score near every moved cut-off and SLA due changes, with example leads (name, company, score) and
    the rules responsible. --format markdown is made for a pull-request comment, --format html for a page.
    Leads: the files given with --leads (JSON, JSON Lines, CSV, Parquet or - for stdin; CRM exports with
    --mapping and --activities, as for eval), else every lead of the scenarios
    (scenarios/leads/*.json and the leads written inside scenario files). Exit 1 when more leads change stage
    or route than the blast-radius guard allows (unless --acknowledge); exit 2 when some leads could not be
    evaluated (the report counts them).

    \b
    Example:
      leadops diff --base main --format markdown --leads export.jsonl --max-changed 5
    """
    from engine import gitops
    from engine.impact import Report, analyse, default_leads, estimate_total, iter_lead_texts
    from engine.semantic_diff import semantic_diff

    when = parse_now(now)
    for f in lead_files:
        if f != "-" and not Path(f).is_file():
            fail(f"lead file '{f}' does not exist")
    try:
        base_src = gitops.source_at_revision(base_rev, policies)
        head_src = gitops.source_at_revision(head_rev, policies) if head_rev else gitops.source_from_directory(policies)
        base_ps = gitops.load_source(base_src)
        head_ps = gitops.load_source(head_src)
    except PolicyError as exc:
        _git_fail(exc)
    changes = semantic_diff(base_ps.model, head_ps.model)
    from engine import handbook as hb
    from engine.thresholds import changed_thresholds

    in_words = [c.to_dict() for c in hb.diff_handbooks(hb.handbook(base_ps, when.date()), hb.handbook(head_ps, when.date()))]
    paths = list(lead_files)
    scenario_items = [] if paths else default_leads(policies)
    source = ", ".join(Path(p).name if p != "-" else "stdin" for p in lead_files[:3]) + (" …" if len(lead_files) > 3 else "") \
        if lead_files else "the scenarios"
    impact = None
    if paths or scenario_items:
        big = any(p == "-" or (p.endswith((".jsonl", ".ndjson")) and Path(p).stat().st_size > 2_000_000) for p in paths)
        workers = jobs or (min(os.cpu_count() or 1, 8) if big else 1)
        total = (estimate_total(paths) if sys.stderr.isatty() else None) if paths else len(scenario_items)
        lead_texts: Any = iter_lead_texts(paths) if paths else scenario_items
        if paths and uses_crm_input(paths, mapping_spec, activities_file, input_format):
            from engine.crm.pipeline import mapped_lead_texts

            if len(paths) != 1 and activities_file:
                fail("--activities joins one lead file: give one --leads FILE with it")
            mapping, acts = open_crm_source(head_ps, paths[0], mapping_spec, activities_file, input_format, encoding,
                                            strict, policies)
            lead_texts = mapped_lead_texts(paths, mapping, input_format, encoding, acts)
            total = None
        try:
            impact = analyse(base_ps, head_ps, lead_texts, when, changes, max_examples=examples, jobs=workers,
                             total=total)
        except OSError as exc:
            fail(f"cannot read leads: {exc}")
        except LeadopsError as exc:
            fail(str(exc))
    limits = [x for x in (max_changed,) if x is not None] or \
        [x for x in (base_ps.model.max_changed_percent, head_ps.model.max_changed_percent) if x is not None]
    command = " ".join(["leadops diff", f"--base {base_rev}"] + ([f"--head {head_rev}"] if head_rev else [])
                       + [f"--leads {p}" for p in lead_files] + [f"--now {when.isoformat()}", "--format markdown"])
    report = Report(base_src.label, head_src.label if head_rev else head_src.label, base_ps.revision, head_ps.revision,
                    when, changes, impact, source, min(limits) if limits else None, acknowledge, command,
                    in_words, changed_thresholds(base_ps.model, head_ps.model), redact)
    if fmt == "json":
        click.echo(render.to_json(report.to_dict()))
    elif fmt == "html":
        from engine.impact_html import report_page

        click.echo(report_page(report.to_dict()), nl=False)
    elif fmt == "markdown":
        click.echo(report.markdown(), nl=False)
    else:
        click.echo(report.text())
    if report.blocked:  # every format already carries the guard line (json: "guard_line"): say it once
        raise SystemExit(1)
    if impact is not None and impact.errors:
        click.echo(f"{plural(impact.errors, 'lead')} could not be evaluated (see the report); exit 2 = partial", err=True)
        raise SystemExit(2)


@cli.command("handbook")
@policy_options
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default="markdown", show_default=True)
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD",
              help="First day of the year of holidays listed (default: the revision's commit date; today outside git).")
@click.option("--out", "out_file", metavar="FILE", help="Write the handbook here instead of stdout.")
def handbook_cmd(policies: str | None, rev: str | None, fmt: str, as_of: str | None, out_file: str | None) -> None:
    """The policy set as plain-language rules of engagement, for the people who sign it.

    Who the ideal customer is (fit points), what makes an MQL and an SQL, hand-backs and reason codes, who gets
    which lead, how fast sales follows up (SLAs, business hours, the coming year's holidays, escalations) and
    who owns each area. Conditions read as words, with labels from the lead schema; anything without a phrase
    is shown as written. The same revision always gives the same bytes.

    \b
    Example:
      leadops handbook --rev main --format html --out handbook.html
    """
    from datetime import date

    from engine import gitops
    from engine import handbook as hb

    try:
        src = gitops.open_source(policies, rev)
        ps = gitops.load_source(src)
        day = date.fromisoformat(as_of) if as_of else (hb.revision_date(src, gitops.split_spec(policies, rev)[1])
                                                       or hb.today_utc())
    except PolicyError as exc:
        _git_fail(exc)
    except ValueError:
        raise click.BadParameter(f"'{as_of}' is not a date (YYYY-MM-DD)", param_hint="--as-of") from None
    book = hb.handbook(ps, day)
    text = hb.to_html(book) if fmt == "html" else hb.to_markdown(book)
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command("approvals")
@click.option("--base", "base_rev", metavar="REV", required=True, help="The target branch or commit (e.g. origin/main).")
@click.option("--head", "head_rev", metavar="REV", default="HEAD", show_default=True, help="The pull request's head commit.")
@click.option("--reviews", "reviews_file", metavar="FILE.json", required=True,
              help="The pull request's reviews as GitHub's REST API returns them ('-' for stdin).")
@click.option("--policies", "-p", metavar="DIR", default="policies", show_default=True, help="Policy directory.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
def approvals_cmd(base_rev: str, head_rev: str, reviews_file: str, policies: str, fmt: str) -> None:
    """Which changed policy areas still lack which owner group's approval; exit 1 until all approved HEAD.

    Areas and groups come from owners in leadops.yaml (at both revisions). Changes are HEAD against its merge
    base with BASE (what the pull request shows). Per reviewer only the latest verdict counts; approvals of an
    older commit and dismissed reviews do not count; an owner's outstanding change request blocks.

    \b
    Example:
      gh api repos/acme/revenue-policies/pulls/42/reviews --paginate > reviews.json
      leadops approvals --base origin/main --head HEAD --reviews reviews.json
    """
    from engine import gitops
    from engine.approvals import ReviewsError, changed_files, check_approvals, parse_reviews

    try:
        text = sys.stdin.read() if reviews_file == "-" else Path(reviews_file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read reviews file '{reviews_file}': {exc.strerror}")
    try:
        reviews = parse_reviews(text)
    except ReviewsError as exc:
        fail(f"{reviews_file}: {exc}")
    try:
        repo = gitops.open_repo(policies)
        head = gitops.resolve_commit(repo, head_rev)
        base = gitops.resolve_commit(repo, base_rev)
        bases = repo.merge_base(base, head)
        merge_base = bases[0] if bases else base
        base_src = gitops.source_at_revision(merge_base.hexsha, policies, repo)
        head_src = gitops.source_at_revision(head.hexsha, policies, repo)
        base_ps = gitops.load_source(base_src)
        head_ps = gitops.load_source(head_src)
    except PolicyError as exc:
        _git_fail(exc)
    changed = changed_files(base_src.files, base_src.root, head_src.files, head_src.root)
    result = check_approvals(base_ps.model.ownership, head_ps.model.ownership, changed, reviews, head.hexsha)
    if fmt == "json":
        click.echo(render.to_json(result.to_dict()))
    elif fmt == "markdown":
        click.echo(result.markdown(), nl=False)
    else:
        click.echo(result.text())
    if not result.ok:
        raise SystemExit(1)


@cli.command("codeowners")
@click.option("--policies", "-p", metavar="DIR", default="policies", show_default=True, help="Policy directory.")
@click.option("--output", "-o", metavar="FILE", help="Where to write (default: .github/CODEOWNERS at the repository root; - for stdout).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is missing or out of date.")
def codeowners_cmd(policies: str, output: str | None, check: bool) -> None:
    """Generate .github/CODEOWNERS from the owners declared in leadops.yaml.

    Each area's files get its approver groups: a group's github_team (@org/team) or its members (@login).

    \b
    Example:
      leadops codeowners --check || (leadops codeowners && git add .github/CODEOWNERS)
    """
    from engine import gitops
    from engine.codeowners import generate

    if ":" in policies and not Path(policies).is_dir():
        raise click.BadParameter("codeowners describes the working tree; give a directory, not REV:DIR",
                                 param_hint="--policies")
    ps = open_policies(policies)
    top = Path.cwd()
    policy_dir = Path(policies).resolve()
    try:
        repo = gitops.open_repo(policies)
        top = Path(repo.working_tree_dir or ".").resolve()
    except PolicyError:
        pass
    try:
        rel = policy_dir.relative_to(top).as_posix()
    except ValueError:
        fail(f"policy directory {policies} is outside {top}; run the command from the repository")
    text = generate(ps.model.ownership, "" if rel == "." else rel, lead_schema=ps.model.lead_schema_path)
    if output == "-":
        click.echo(text, nl=False)
        return
    target = Path(output) if output else top / ".github" / "CODEOWNERS"
    shown = os.path.relpath(target)
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            what = "missing" if current is None else "out of date (it no longer matches the owners in leadops.yaml)"
            fail(f"{shown} is {what}; run `leadops codeowners` and commit it")
        click.echo(f"{shown}: up to date")
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {shown}: {exc.strerror}")
    click.echo(f"{shown}: written ({sum(1 for ln in text.splitlines() if ln and not ln.startswith('#'))} paths)")


@cli.command("init")
@click.argument("directory", metavar="DIR")
@click.option("--name", help="Policy set name (default: from DIR).")
@click.option("--example", is_flag=True, help="Copy the full Acme example (policies, 15 sample leads, 5 scenario files) instead of the starter set.")
@click.option("--country", metavar="CC", help="Public holidays of this ISO country code for the starter calendar (e.g. US).")
@click.option("--subdivision", metavar="CODE", help="Holidays of this state/region too (e.g. NY); needs --country.")
@click.option("--time-zone", metavar="ZONE", help="IANA time zone of the starter calendar (e.g. America/New_York; default: the country's only zone, else UTC).")
@click.option("--crm", type=click.Choice(["hubspot", "salesforce", "pipedrive"]),
              help="Start with this CRM's mapping in policies/mappings/ (leadops eval export.csv --mapping CRM).")
@click.option("--git/--no-git", "use_git", default=True, show_default=True, help="Run `git init` in DIR (branch main).")
def init_cmd(directory: str, name: str | None, example: bool, country: str | None, subdivision: str | None,
             time_zone: str | None, use_git: bool, crm: str | None) -> None:
    """Scaffold a new policy repository that validates and passes its own tests immediately.

    Writes a small starter policy set (every value to replace marked PLACEHOLDER) with one passing scenario,
    its calendar in your region; or, with --example, leadops' full worked example. Plus schemas/, the policy
    CI workflows, .github/CODEOWNERS, .pre-commit-config.yaml, README.md and a .gitignore that keeps private
    keys, bundles and caches out of git; `git init` on branch main.

    \b
    Example:
      leadops init revenue-policies --country US --subdivision NY --time-zone America/New_York && cd revenue-policies && leadops test
    """
    from engine.scaffold import RegionError, ScaffoldError, check_region, scaffold

    region = None
    try:
        if country or subdivision or time_zone:
            region = check_region(country, subdivision, time_zone)
        done = scaffold(directory, name=name, git=use_git, example=example, region=region, crm=crm)
    except RegionError as exc:
        raise click.BadParameter(str(exc), param_hint=exc.option) from None
    except ScaffoldError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {directory}: {exc.strerror}")
    except PolicyError as exc:  # pragma: no cover - the templates are tested
        _git_fail(exc)
    click.echo(f"{directory}: new policy repository ({len(done.files)} files{', git initialised on main' if done.git else ''})")
    if not example:
        click.echo("replace the PLACEHOLDER values: grep -rn PLACEHOLDER policies scenarios")
    click.echo(f"next: cd {directory} && leadops validate && leadops test && git add -A && git commit -m 'Policy set'")


def _examples_last(command: click.Command) -> None:
    """Move each docstring's trailing "Example:" block into the epilog, so --help ends with the example."""
    import inspect
    import re

    match = re.search(r"(\x08\s*\n)?\s*Example:", command.help or "")
    if match and match.start() > 0 and not command.epilog:
        text = command.help or ""
        example = inspect.cleandoc(text[match.end():])
        command.help = text[: match.start()].rstrip()
        command.epilog = "\b\nExample:\n" + "\n".join("  " + line for line in example.splitlines())
    for sub in getattr(command, "commands", {}).values():
        _examples_last(sub)


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


_examples_last(cli)  # last statement before the entry point: every command is registered by now

if __name__ == "__main__":
    main()
