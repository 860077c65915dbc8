"""Where policy files come from: a directory on disk (git revisions and bundles feed the same mapping).

Every source produces the same thing: a mapping of repo-relative posix paths to bytes, plus the name of the
policy directory inside it. `load_policy_files` is the one loader all sources go through.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path

from engine.errors import Diagnostic, Location, PolicyError
from engine.yamlsafe import MAX_YAML_BYTES, YamlError, load_yaml

MAX_POLICY_FILES = 200
MAX_LEAD_SCHEMA_BYTES = 1 << 20
DEFAULT_LEAD_SCHEMA = "../schemas/lead.schema.json"


def read_directory(path: str | Path) -> tuple[dict[str, bytes], str]:
    """Read a policy directory and the lead schema it names. Returns (files, root)."""
    directory = Path(path)
    if not directory.is_dir():
        raise PolicyError([Diagnostic("POL001", f"policy directory '{path}' does not exist",
                                      Location(str(path)), "pass --policies DIR (the directory holding stages.yaml …)")])
    root = directory.resolve().name
    base = directory.resolve().parent
    files: dict[str, bytes] = {}
    problems: list[Diagnostic] = []
    yamls = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for p in yamls[:MAX_POLICY_FILES]:
        name = f"{root}/{p.name}"
        data = _read_inside(p, base, MAX_YAML_BYTES, name, problems)
        if data is not None:
            files[name] = data
    schema_key = lead_schema_key(files, root, problems)
    if schema_key is not None and (base / schema_key).is_file():
        data = _read_inside(base / schema_key, base, MAX_LEAD_SCHEMA_BYTES, schema_key, problems)
        if data is not None:
            files[schema_key] = data
    if problems:
        raise PolicyError(problems)
    return files, root


def lead_schema_key(files: Mapping[str, bytes], root: str, problems: list[Diagnostic]) -> str | None:
    """The `files` key of the lead schema a policy set names: `lead_schema` of its `kind: policy-set` file
    (default DEFAULT_LEAD_SCHEMA) joined to `root`, i.e. relative to the policy directory's parent; None when it
    leaves that. An absolute or backslashed path is LEADSCHEMA003 (appended to `problems`) and the default is
    used. The one rule for every source: a directory and a git revision resolve the schema alike."""
    schema_rel = DEFAULT_LEAD_SCHEMA
    for name, data in files.items():
        try:
            doc, marks = load_yaml(data, name)
        except YamlError:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "policy-set" and isinstance(doc.get("lead_schema"), str):
            schema_rel = doc["lead_schema"]
            if posixpath.isabs(schema_rel) or "\\" in schema_rel:
                problems.append(Diagnostic(
                    "LEADSCHEMA003", f"lead_schema '{schema_rel}' must be a relative path inside the repository",
                    marks.at(("lead_schema",)), "write it relative to the policies directory, e.g. ../schemas/lead.schema.json"))
                schema_rel = DEFAULT_LEAD_SCHEMA
    key = posixpath.normpath(posixpath.join(root, schema_rel))
    return None if key == ".." or key.startswith("../") else key


def _read_inside(path: Path, base: Path, limit: int, name: str, problems: list[Diagnostic]) -> bytes | None:
    """Read a policy-set file, refusing files that resolve outside the repository or exceed `limit` bytes."""
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        problems.append(Diagnostic("POL004", f"'{name}' resolves outside the policy repository ({path.name} is a link)",
                                   Location(name), "policy files must be regular files inside the repository"))
        return None
    size = resolved.stat().st_size
    if size > limit:
        problems.append(Diagnostic("YAML007", f"'{name}' is {size} bytes; the limit is {limit}", Location(name, 1, 1),
                                   "split the file or remove data that does not belong in a policy"))
        return None
    return resolved.read_bytes()
