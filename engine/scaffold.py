"""`leadops init DIR`: a new policy repository that validates and passes its own tests immediately.

By default the policies are the small starter set of `engine.starter` (placeholders clearly marked, one
passing scenario, one calendar in the team's region); `example=True` copies this repository's full Acme
example instead (policies, scenarios, sample leads). Both get this repository's JSON Schemas, the policy CI
workflows (pull request, approvals, release) and pre-commit config, plus a generated CODEOWNERS, README and
.gitignore. The git repository starts on branch `main`, the branch the workflows run on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.starter import Region, starter_files

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
INSTALL_LINE = 'LEADOPS_PACKAGE: ".[test]"'
BRANCH = "main"
SHARED = (  # copied for every scaffold
    ("schemas", ("*.json",)),
    (".github/workflows", ("policy-*.yml",)),  # leadops' own workflows (e.g. dependency drift) stay here
)
EXAMPLE = (  # copied only with example=True
    ("policies", ("*.yaml", "*.yml")),
    ("scenarios", ("**/*.json", "**/*.jsonl", "**/*.yaml", "**/*.yml")),
)
REPOSITORY_PLACEHOLDER = "https://<git host>/<org>/leadops.git"

README = """\
# {name}

Our revenue team's agreements as code — what an MQL and an SQL are, how leads are scored and routed, and
how fast sales follows up — evaluated by leadops.

## Quick start

leadops is installed from its source repository until a release is published on a package index:

```sh
python3 -m venv .venv && .venv/bin/pip install -q "{package}" && . .venv/bin/activate
leadops validate                      # schemas, references, expressions
leadops test                          # every scenario in scenarios/
leadops eval {eval_lead} --explain --format text
```

The CI workflows in `.github/workflows/` install the same package (`LEADOPS_PACKAGE`); change it in both
places when you move to another leadops version.{repository_note}

{first_steps}

## Changing a policy

1. Branch, edit `policies/*.yaml`, add or update a scenario in `scenarios/`.
2. `leadops diff --base main --format markdown` shows what changes, in words, and how many leads move.
3. Open a pull request: CI validates, runs the scenarios, posts the impact report and checks that the
   owners of every changed area (see `owners` in `policies/leadops.yaml`) approved the latest commit.
4. After the merge, CI builds (and signs) the policy bundle.

Owners live in `policies/leadops.yaml`; after changing them run `leadops codeowners` and commit
`.github/CODEOWNERS`. Hooks: `pre-commit install` runs `leadops validate` and `leadops test` before commits.
Private signing keys never belong in git: `keys/` and private `*.pem` files are git-ignored.
"""

FIRST_STEPS_STARTER = """\
## First steps

The policies are a small starting set: every value marked `PLACEHOLDER` is yours to replace
(`grep -rn PLACEHOLDER policies scenarios`) — the owners' GitHub handles, your team and queue, the scoring
rules, the MQL threshold and the SLA. Then `leadops codeowners`, `leadops test`, and record real leads as
scenarios with `leadops record LEAD.json`. The full worked example (an Australian company with five teams,
calendars in four countries and fifteen sample leads) is `leadops init --example DIR`."""

FIRST_STEPS_EXAMPLE = """\
## First steps

These policies are leadops' worked example for "Acme": replace the owners in `policies/leadops.yaml`, the
rosters in `policies/teams.yaml` and the calendars in `policies/calendars.yaml` with yours, then run
`leadops codeowners`. `leadops init DIR` without `--example` starts from a small set of placeholders instead."""

GITIGNORE = """\
# Private keys never go into git (keep them in a CI secret or a vault). `leadops keys generate` writes to
# keys/; any other private key file is covered by *.pem (public keys: NAME.public.pem / NAME.pub.pem).
keys/
*.pem
!*.public.pem
!*.pub.pem
*.key
# built bundles, the client's bundle cache, CI reports
/dist/
*.tar.gz
.leadops-cache/
report.xml
impact.md
reviews.json
# Python
.venv/
__pycache__/
"""


class ScaffoldError(Exception):
    pass


@dataclass
class Scaffolded:
    root: Path
    files: list[str]
    git: bool
    package: str = ""  # what the README and the workflows install


class RegionError(ScaffoldError):
    """A bad --country/--subdivision/--time-zone: `option` names the option, the message says how to fix it."""

    def __init__(self, option: str, message: str):
        self.option = option
        super().__init__(message)


def check_region(country: str | None = None, subdivision: str | None = None, time_zone: str | None = None) -> Region:
    """The region of the starter calendar, validated exactly as the calendar will be (holidays and zone)."""
    from engine.zonenames import country_zones, is_zone, zone_hint

    country = country.strip().upper() if country else None
    subdivision = subdivision.strip().upper() if subdivision else None
    if subdivision and not country:
        raise RegionError("--subdivision", f"--subdivision {subdivision} needs --country (e.g. --country US --subdivision NY)")
    if country:
        _check_calendar("UTC", country, subdivision)  # the holidays first: they do not depend on the zone
    if time_zone is None:
        zones = country_zones(country) if country else ("UTC",)
        if len(zones) != 1:
            listed = ", ".join(zones[:8]) + (", …" if len(zones) > 8 else "") if zones else ""
            raise RegionError("--time-zone", f"{country} has {'several time zones' if zones else 'no time zone known here'}"
                              f"; pass --time-zone{' (one of ' + listed + ')' if listed else ''}")
        time_zone = zones[0]
    if not is_zone(time_zone):
        raise RegionError("--time-zone", f"unknown time zone '{time_zone}': {zone_hint(time_zone, country)}")
    _check_calendar(time_zone, country, subdivision)
    return Region(time_zone, country, subdivision)


def _check_calendar(time_zone: str, country: str | None, subdivision: str | None) -> None:
    """Build the calendar the starter will hold: the one validation of zones and holiday regions."""
    from engine.calendar import BusinessCalendar, parse_weekly_hours

    try:
        BusinessCalendar(id="main", timezone=time_zone, weekly_hours=parse_weekly_hours({"mon-fri": "09:00-17:00"}),
                         holiday_country=country, holiday_subdivision=subdivision)
    except ValueError as exc:
        message = str(exc).replace("calendar 'main': ", "")
        option = "--subdivision" if "subdivision" in message else "--country" if "countr" in message else "--time-zone"
        raise RegionError(option, message) from None


def install_spec(checkout: Path = TEMPLATE_ROOT) -> tuple[str, bool]:
    """(pip requirement for leadops, whether its repository is known): the commit of this leadops checkout
    at its `origin` remote, so a new repository runs exactly the leadops that scaffolded it."""
    from engine import __version__

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                                  check=False, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    url, commit = git("remote", "get-url", "origin"), git("rev-parse", "HEAD")
    scp = re.fullmatch(r"[\w.-]+@([\w.-]+):(.+)", url)  # git@github.com:org/leadops.git -> https
    if scp:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    if re.fullmatch(r"https://[^\s@\"']+", url) and re.fullmatch(r"[0-9a-f]{40}", commit):
        return f"leadops @ git+{url}@{commit}", True
    return f"leadops @ git+{REPOSITORY_PLACEHOLDER}@v{__version__}", False


def _copied(groups: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[Path, str]]:
    out = []
    for folder, patterns in groups:
        base = TEMPLATE_ROOT / folder
        if not base.is_dir():
            continue
        seen: set[Path] = set()
        for pattern in patterns:
            for p in sorted(base.glob(pattern)):
                if p.is_file() and p not in seen and "__pycache__" not in p.parts:
                    seen.add(p)
                    out.append((p, p.relative_to(TEMPLATE_ROOT).as_posix()))
    return out


def _template_files(example: bool) -> list[tuple[Path, str]]:
    out = _copied(SHARED + (EXAMPLE if example else ()))
    pre = TEMPLATE_ROOT / ".pre-commit-config.yaml"
    if pre.is_file():
        out.append((pre, ".pre-commit-config.yaml"))
    return out


def scaffold(target: str | Path, name: str | None = None, git: bool = True, *, example: bool = False,
             region: Region | None = None, crm: str | None = None) -> Scaffolded:
    """Write a new policy repository into `target` (which must not exist or be empty).

    `example`: the full Acme example instead of the starter set; `region` (see `check_region`): the starter
    calendar's time zone and holidays. (A CRM choice — which lead schema and field names — belongs here too,
    as one more keyword picking the lead schema that `_write_templates` copies.)
    """
    from engine.codeowners import generate

    root = Path(target)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"'{target}' already exists and is not empty; choose a new directory")
    name = name or re.sub(r"[^a-z0-9_-]+", "-", root.resolve().name.lower()).strip("-_") or "revenue-policies"
    if not NAME_RE.match(name):
        raise ScaffoldError(f"policy set name '{name}' is not a lower-case id (letters, digits, '-', '_'); pass --name")
    if example and region is not None:
        raise ScaffoldError("--example keeps the example's own calendars; --country/--subdivision/--time-zone "
                            "set the starter calendar (leave out --example)")
    templates = _template_files(example)
    if not any(rel == "schemas/lead.schema.json" for _, rel in templates):
        raise ScaffoldError(f"templates not found under {TEMPLATE_ROOT} (leadops must be installed from its repository)")
    package, known = install_spec()
    root.mkdir(parents=True, exist_ok=True)
    written = _write_templates(root, templates, name, package)
    if not example:
        for rel, text in starter_files(name, region or Region()).items():
            _write(root, rel, text)
            written.append(rel)
    note = "" if known else (f"\n\n`{REPOSITORY_PLACEHOLDER}` is a placeholder: put the address of the leadops "
                             "repository you install from in the command above and in the workflows.")
    eval_lead = "scenarios/leads/icp-enterprise-brisbane.json" if example else "lead.json   # a lead exported from your CRM"
    _write(root, "README.md", README.format(name=name, package=package, eval_lead=eval_lead, repository_note=note,
                                            first_steps=FIRST_STEPS_EXAMPLE if example else FIRST_STEPS_STARTER))
    _write(root, ".gitignore", GITIGNORE)
    written += ["README.md", ".gitignore"]
    # CODEOWNERS from the ownership just written, so `leadops codeowners --check` passes from the first commit
    import engine

    ps = engine.load_policy_files(*_read(root))
    _write(root, ".github/CODEOWNERS", generate(ps.model.ownership, "policies", lead_schema=ps.model.lead_schema_path))
    written.append(".github/CODEOWNERS")
    if crm is not None:  # the CRM's mapping preset fitted to this policy set (engine/crm): --mapping <crm>
        from engine.crm.mapping import preset_text_for

        try:
            _write(root, f"policies/mappings/{crm}.yaml", preset_text_for(crm, ps))
        except ValueError as exc:
            raise ScaffoldError(str(exc)) from None
        written.append(f"policies/mappings/{crm}.yaml")
    did_git = git and shutil.which("git") is not None and not (root / ".git").exists() and _git_init(root)
    return Scaffolded(root, sorted(written), did_git, package)


def _write(root: Path, rel: str, text: str) -> None:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")


def _write_templates(root: Path, templates: list[tuple[Path, str]], name: str, package: str) -> list[str]:
    written = []
    for src, rel in templates:
        if rel == "policies/leadops.yaml":
            text = src.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)
            text = re.sub(r'(?m)^version:.*$', 'version: "0.1.0"', text, count=1)
            _write(root, rel, text)
        elif rel.startswith(".github/workflows/"):
            text = src.read_text(encoding="utf-8").replace(INSTALL_LINE, f'LEADOPS_PACKAGE: "{package}"')
            _write(root, rel, text)
        else:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / rel)
        written.append(rel)
    return written


def _git_init(root: Path) -> bool:
    """`git init` on branch main whatever the user's init.defaultBranch (and on gits older than `-b`)."""
    for args in (["init", "-q", str(root)], ["-C", str(root), "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}"]):
        if subprocess.run(["git", *args], capture_output=True, text=True, check=False).returncode != 0:
            return False
    return True


def _read(root: Path) -> tuple[dict[str, bytes], str]:
    from engine.sources import read_directory

    return read_directory(root / "policies")
