"""`leadops init DIR`: a new policy repository that validates and passes its own tests immediately.

Everything is copied from this repository's own files (so the scaffold never drifts from what is tested
here): the example policy set, the JSON Schemas, the scenarios, the CI workflows, the pre-commit config;
plus a generated CODEOWNERS, README and .gitignore.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
INSTALL_LINE = 'LEADOPS_PACKAGE: ".[test]"'
COPIED = (
    ("policies", ("*.yaml", "*.yml")),
    ("schemas", ("*.json",)),
    ("scenarios", ("**/*.json", "**/*.jsonl", "**/*.yaml", "**/*.yml")),
    (".github/workflows", ("*.yml", "*.yaml")),
)

README = """\
# {name}

Our revenue team's agreements as code — what an MQL and an SQL are, how leads are scored and routed, and
how fast sales follows up — evaluated by [leadops](https://pypi.org/project/leadops/).

## Quick start

```sh
python3 -m venv .venv && .venv/bin/pip install -q "leadops=={version}" && . .venv/bin/activate
leadops validate                      # schemas, references, expressions
leadops test                          # every scenario in scenarios/
leadops eval scenarios/leads/icp-enterprise-brisbane.json --explain --format text
```

If your package index does not carry leadops, install it from its repository instead — in the command above
and in `LEADOPS_PACKAGE` of `.github/workflows/*.yml`: `leadops @ git+https://<git host>/<org>/leadops.git@v{version}`.
The example policies name Acme's people and teams: replace the owners in `policies/leadops.yaml` and the rosters in
`policies/teams.yaml` with yours, then run `leadops codeowners`.

## Changing a policy

1. Branch, edit `policies/*.yaml`, add or update a scenario in `scenarios/`.
2. `leadops diff --base main --format markdown` shows what changes, in words, and how many leads move.
3. Open a pull request: CI validates, runs the scenarios, posts the impact report and checks that the
   owners of every changed area (see `owners` in `policies/leadops.yaml`) approved the latest commit.
4. After the merge, CI builds (and signs) the policy bundle.

Owners live in `policies/leadops.yaml`; after changing them run `leadops codeowners` and commit
`.github/CODEOWNERS`. Hooks: `pre-commit install` runs `leadops validate` and `leadops test` before commits.
"""

GITIGNORE = """\
.venv/
__pycache__/
/dist/
report.xml
impact.md
reviews.json
*.private.pem
"""


class ScaffoldError(Exception):
    pass


@dataclass
class Scaffolded:
    root: Path
    files: list[str]
    git: bool


def _template_files() -> list[tuple[Path, str]]:
    out = []
    for folder, patterns in COPIED:
        base = TEMPLATE_ROOT / folder
        if not base.is_dir():
            continue
        seen: set[Path] = set()
        for pattern in patterns:
            for p in sorted(base.glob(pattern)):
                if p.is_file() and p not in seen and "__pycache__" not in p.parts:
                    seen.add(p)
                    out.append((p, p.relative_to(TEMPLATE_ROOT).as_posix()))
    pre = TEMPLATE_ROOT / ".pre-commit-config.yaml"
    if pre.is_file():
        out.append((pre, ".pre-commit-config.yaml"))
    return out


def scaffold(target: str | Path, name: str | None = None, git: bool = True, crm: str | None = None) -> Scaffolded:
    """Write a new policy repository into `target` (which must not exist or be empty); `crm` (a mapping preset:
    hubspot, salesforce) adds policies/mappings/<crm>.yaml to edit for the CRM's fields and owners."""
    from engine import __version__
    from engine.codeowners import generate

    root = Path(target)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"'{target}' already exists and is not empty; choose a new directory")
    name = name or re.sub(r"[^a-z0-9_-]+", "-", root.resolve().name.lower()).strip("-_") or "revenue-policies"
    if not NAME_RE.match(name):
        raise ScaffoldError(f"policy set name '{name}' is not a lower-case id (letters, digits, '-', '_'); pass --name")
    templates = _template_files()
    if not any(rel == "policies/leadops.yaml" for _, rel in templates):
        raise ScaffoldError(f"templates not found under {TEMPLATE_ROOT} (leadops must be installed from its repository)")
    written = []
    root.mkdir(parents=True, exist_ok=True)
    for src, rel in templates:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel == "policies/leadops.yaml":
            text = src.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)
            text = re.sub(r'(?m)^version:.*$', 'version: "0.1.0"', text, count=1)
            dest.write_text(text, encoding="utf-8")
        elif rel.startswith(".github/workflows/"):
            text = src.read_text(encoding="utf-8").replace(INSTALL_LINE, f'LEADOPS_PACKAGE: "leadops=={__version__}"')
            dest.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(src, dest)
        written.append(rel)
    if crm is not None:  # the CRM's mapping preset, validated by `leadops validate` and used by --mapping <crm>
        from engine.crm.mapping import PRESET_DIR, presets

        if crm not in presets():
            raise ScaffoldError(f"unknown CRM '{crm}'; one of: {', '.join(presets())}")
        text = (PRESET_DIR / f"{crm}.yaml").read_text(encoding="utf-8").replace("../../../schemas/", "../../schemas/")
        (root / "policies" / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "policies" / "mappings" / f"{crm}.yaml").write_text(text, encoding="utf-8")
        written.append(f"policies/mappings/{crm}.yaml")
    (root / "README.md").write_text(README.format(name=name, version=__version__), encoding="utf-8")
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    written += ["README.md", ".gitignore"]
    # CODEOWNERS from the copied ownership, so `leadops codeowners --check` passes from the first commit
    import engine

    ps = engine.load_policy_files(*_read(root))
    (root / ".github").mkdir(exist_ok=True)
    (root / ".github" / "CODEOWNERS").write_text(generate(ps.model.ownership, "policies", lead_schema=ps.model.lead_schema_path), encoding="utf-8")
    written.append(".github/CODEOWNERS")
    did_git = False
    if git and shutil.which("git") and not (root / ".git").exists():
        proc = subprocess.run(["git", "init", "-q", str(root)], capture_output=True, text=True, check=False)
        did_git = proc.returncode == 0
    return Scaffolded(root, sorted(written), did_git)


def _read(root: Path) -> tuple[dict[str, bytes], str]:
    from engine.sources import read_directory

    return read_directory(root / "policies")
