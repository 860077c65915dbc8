"""Custom fields by name: CRMs such as Pipedrive key custom fields by 40-character hashes and labels by UUIDs,
which a mapping must name by key; a field list (Pipedrive's /dealFields, /personFields or /organizationFields
JSON export: key and name) or a label list (/leadLabels: id and name) says which human name each stands for, so
`leadops validate --fields` can show it next to the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.crm.mapping import Mapping, base_name
from engine.crm.records import InputError

HASH_KEY = re.compile(r"[0-9a-f]{40}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_field_list(path: str | Path) -> dict[str, str]:
    """key -> name of a field list export (an API page {"data": [{key, name, …}]} or a bare array), or id -> name
    of a label list ({"data": [{id, name, …}]})."""
    from engine.jsonstrict import loads

    try:
        doc = loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the field list: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    items = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a field list ({{\"data\": [{{\"key\": …, \"name\": …}}]}}), "
                         "e.g. the JSON of GET /v1/dealFields")
    out = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        key = item.get("key") if isinstance(item.get("key"), str) else item.get("id")
        if isinstance(key, str):
            out[key] = item["name"]
    return out


def custom_field_keys(mapping: Mapping) -> list[tuple[str, str]]:
    """(lead field, key) for every source the mapping reads that is a 40-character custom field key, and
    ("field = value", id) for every value-map spelling that is a UUID (Pipedrive's lead labels)."""
    out = []
    for prefix, rules in (("", mapping.rules), ("activities.", mapping.activity_rules)):
        for rule in rules:
            for source in rule.sources:
                key = base_name(source)
                if HASH_KEY.fullmatch(key):
                    out.append((prefix + rule.target.name, key))
            for native, spellings in rule.reverse.items():
                out.extend((f"{prefix}{rule.target.name} = {native}", spelling) for _, spelling in spellings
                           if isinstance(spelling, str) and UUID.fullmatch(spelling))
    return out


def named_custom_fields(mapping: Mapping, names: dict[str, str]) -> list[dict[str, Any]]:
    """The mapping's custom field keys with their names from a field list (None: not in the list)."""
    return [{"mapping": mapping.name, "field": field, "key": key, "name": names.get(key)}
            for field, key in custom_field_keys(mapping)]


__all__ = ["HASH_KEY", "custom_field_keys", "named_custom_fields", "read_field_list"]
