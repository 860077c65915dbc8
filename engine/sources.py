"""Where policy files come from: a directory on disk (git revisions and bundles feed the same mapping).

Every source produces the same thing: a mapping of repo-relative posix paths to bytes, plus the name of the
policy directory inside it. `load_policy_files` is the one loader all sources go through.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from engine.errors import PolicyError, Diagnostic, Location
from engine.yamlsafe import YamlError, load_yaml

MAX_POLICY_FILES = 200
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
    yamls = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for p in yamls[:MAX_POLICY_FILES]:
        files[f"{root}/{p.name}"] = p.read_bytes()
    schema_rel = DEFAULT_LEAD_SCHEMA
    for name, data in files.items():
        try:
            doc, _ = load_yaml(data, name)
        except YamlError:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "policy-set" and isinstance(doc.get("lead_schema"), str):
            schema_rel = doc["lead_schema"]
    schema_key = posixpath.normpath(posixpath.join(root, schema_rel))
    schema_path = (base / schema_key).resolve()
    if not schema_key.startswith("../") and schema_path.is_file():
        files[schema_key] = schema_path.read_bytes()
    return files, root
