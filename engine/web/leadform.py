"""An HTML form generated from the lead JSON Schema: one labelled control per scalar field, nested objects
as fieldsets; arrays (activities, SLA pauses) and free-form objects are left to the page's JSON box.

Each control carries `data-path` (the field's dotted path) and `data-type`, so the page script can turn the
form into a lead and a pasted lead into the form without knowing the schema. Titles and descriptions come
from the schema; nothing in it is trusted as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

SKIPPED = {"id"}  # rendered first, separately: every lead needs one


def _label(name: str, spec: Mapping[str, Any]) -> str:
    title = spec.get("title")
    return title if isinstance(title, str) and title.strip() else name.replace("_", " ").capitalize()


def _control(path: str, name: str, spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type")
    cid = "f-" + path.replace(".", "-")
    desc = spec.get("description")
    hint_id = f"{cid}-hint"
    hint = f'<small id="{hint_id}">{html.escape(desc)}</small>' if isinstance(desc, str) and desc else ""
    described = f' aria-describedby="{hint_id}"' if hint else ""
    label = f'<label for="{cid}">{html.escape(_label(name, spec))}</label>'
    attrs = f'id="{cid}" name="{html.escape(path)}" data-path="{html.escape(path)}"{described}'
    if isinstance(spec.get("enum"), list):
        options = '<option value="">—</option>' + "".join(
            f'<option value="{html.escape(str(v))}">{html.escape(str(v))}</option>' for v in spec["enum"])
        return f'<div class="field">{label}<select {attrs} data-type="string">{options}</select>{hint}</div>'
    if kind == "boolean":
        options = '<option value="">—</option><option value="true">yes</option><option value="false">no</option>'
        return f'<div class="field">{label}<select {attrs} data-type="boolean">{options}</select>{hint}</div>'
    if kind in ("integer", "number"):
        step = "1" if kind == "integer" else "any"
        return f'<div class="field">{label}<input type="number" step="{step}" {attrs} data-type="{kind}">{hint}</div>'
    if kind == "string":
        placeholder = ' placeholder="2026-11-20T09:00:00+10:00"' if spec.get("format") == "date-time" else ""
        return f'<div class="field">{label}<input type="text" {attrs} data-type="string"{placeholder}>{hint}</div>'
    return None


def lead_form_fields(schema: Mapping[str, Any], prefix: str = "") -> str:
    """The controls for every scalar property of `schema` (recursing into objects with properties)."""
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return ""
    parts = []
    for name, spec in props.items():
        if not isinstance(spec, Mapping) or (not prefix and name in SKIPPED):
            continue
        path = f"{prefix}{name}"
        if spec.get("type") == "object" and isinstance(spec.get("properties"), Mapping) and "required" not in spec:
            inner = lead_form_fields(spec, path + ".")
            if inner:
                parts.append(f"<fieldset><legend>{html.escape(_label(name, spec))}</legend>{inner}</fieldset>")
            continue
        control = _control(path, name, spec)
        if control:
            parts.append(control)
    return "".join(parts)
