"""The pull-request impact report as one self-contained HTML page, drawn from its JSON form (`Report.to_dict`).

Charts are plain HTML/CSS bars (no scripts, fonts or images to fetch), so the page opens offline and the
same report gives the same bytes. The service's /ui/impact renders uploaded `leadops diff --format json`
results with `report_body`: that input is untrusted, so every value is escaped and a document of the wrong
shape is refused with one `ImpactDocumentError` naming what is missing.
"""

from __future__ import annotations

import html
from typing import Any

from engine.handbook.render import diff_html, page
from engine.impact import KINDS, NEAR, sla_load_words, stage_label, touched
from engine.semantic_diff import fmt_num

BAR_CSS = """
.bars td{width:42%}.bars td:first-child{width:16%}span.bar{display:inline-block;height:.8rem;vertical-align:middle;margin-right:.3rem;max-width:85%}
.b{background:#8c959f}.h{background:#0969da}.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem}
td.num,th.num{text-align:right}.guard{padding:.5rem .8rem;border-left:4px solid #bf8700;background:#fff8c5}
.blocked{border-color:#cf222e;background:#ffebe9}.small{color:#57606a;font-size:.85em}
"""


class ImpactDocumentError(ValueError):
    """The document is not a `leadops diff --format json` result."""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), cls: str = "") -> str:
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<table{f" class={cls}" if cls else ""}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bar(n: int, top: int, cls: str) -> str:
    width = 0 if not top else round(100 * n / top, 1)
    return f'<span class="{cls}" style="width:{width}%" aria-hidden="true"></span>{n}'


def _legend() -> str:
    return '<p class="legend small"><span class="b"></span>before<span class="h"></span>after</p>'


def _num(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ImpactDocumentError(f"expected a number, got {x!r}")
    return int(x)


# ------------------------------------------------------------------ sections


def _funnel(imp: dict[str, Any]) -> str:
    f = imp.get("funnel") or {"stages": [], "weeks": []}
    top = max([_num(r["base"]) for r in f["stages"]] + [_num(r["head"]) for r in f["stages"]] + [1])
    rows = [[_e(r["label"]), _bar(_num(r["base"]), top, "bar b"), _bar(_num(r["head"]), top, "bar h")] for r in f["stages"]]
    out = ["<h2>Funnel</h2>", _legend(), _table(["stage", "leads before", "leads after"], rows, cls="bars")]
    weeks = f["weeks"]
    if weeks and (len(weeks) > 1 or weeks[0]["week"] != "undated"):
        labels = [r["label"] for r in f["stages"]]
        wrows = []
        for w in weeks:
            cells = []
            for c in w["stages"].values():
                a, b = _num(c["base"]), _num(c["head"])
                cells.append(str(a) if a == b else f"{a} → <strong>{b}</strong>")
            wrows.append([_e(w["week"]), *cells])
        out += ["<h3>Per week of the sample</h3>", _table(["week", *labels], wrows, set(range(1, len(labels) + 1)))]
    return "".join(out)


def _assignees(imp: dict[str, Any]) -> str:
    out = []
    for kind, title in (("teams", "Team or queue"), ("reps", "Rep")):
        rows = [r for r in (imp.get("assignees") or {}).get(kind, []) if touched(r)]
        if rows:
            out.append(_table([title, "leads before → after", "gained", "lost", "SLA load (clocks running)"],
                              [[_e(r["name"]), f"{_num(r['leads_base'])} → {_num(r['leads_head'])}", _e(r["gained"]),
                                _e(r["lost"]), _e(sla_load_words(r["slas"]))] for r in rows[:30]], {1, 2, 3}))
    return ("<h2>Impact per team and rep</h2>" + "".join(out)) if out else ""


def _thresholds(doc: dict[str, Any]) -> str:
    out = []
    for t in doc.get("thresholds") or []:
        top = max([_num(r["base"]) for r in t["histogram"]] + [_num(r["head"]) for r in t["histogram"]] + [1])
        old, new = int(t["old"] // 1), int(t["new"] // 1)
        rows = []
        for r in t["histogram"]:
            p = _num(r["points"])
            mark = " ← old cut-off" if p == old and old != new else (" ← new cut-off" if p == new and old != new else
                                                                        (" ← cut-off" if p == new else ""))
            if r["base"] or r["head"] or mark:
                rows.append([f"{p}{_e(mark)}", _bar(_num(r["base"]), top, "bar b"), _bar(_num(r["head"]), top, "bar h")])
        out += [f"<h3>Near the {_e(t['label'])} cut-off ({_e(t['score'])} score {_e(t['op'])} {_e(fmt_num(t['old']))} → "
                f"{_e(fmt_num(t['new']))})</h3>",
                f"<p>{_num(t['near_old'])} leads within ±{NEAR} points of the old cut-off (before); "
                f"{_num(t['near_new'])} within ±{NEAR} of the new cut-off (after).</p>", _legend(),
                _table(["points", "leads before", "leads after"], rows, cls="bars")]
    return ("<h2>Score cut-offs that move</h2>" + "".join(out)) if out else ""


def _matrix(imp: dict[str, Any]) -> str:
    moves = imp["stages"]["moves"]
    if not moves:
        return ""
    order = [r["stage"] for r in (imp.get("funnel") or {}).get("stages", [])]

    def key(s: str) -> tuple[int, str]:
        return (order.index(s), "") if s in order else (len(order), s)

    froms = sorted({m["from"] for m in moves}, key=key)
    tos = sorted({m["to"] for m in moves}, key=key)
    cell = {(m["from"], m["to"]): _num(m["leads"]) for m in moves}
    rows = [[f"<strong>{_e(stage_label(f))}</strong>", *(str(cell.get((f, t), "")) or "·" for t in tos)] for f in froms]
    return ("<h2>Stage changes</h2><p class=small>Rows: the stage before; columns: the stage after.</p>"
            + _table(["before ↓ / after →", *(stage_label(t) for t in tos)], rows, set(range(1, len(tos) + 1))))


def _pairs(title: str, moves: list[dict[str, Any]]) -> str:
    if not moves:
        return ""
    return f"<h2>{_e(title)}</h2>" + _table(["from", "to", "leads"], [[_e(m["from"]), _e(m["to"]), _e(m["leads"])]
                                                                   for m in moves[:15]], {2})


def _score(imp: dict[str, Any]) -> str:
    sc = imp["score"]
    base, head = sc["histogram_base"], sc["histogram_head"]
    buckets = sorted({int(k) for k in (*base, *head)})
    top = max([_num(v) for v in (*base.values(), *head.values())] + [1])
    width = _num(sc["bucket"])
    rows = [[f"{b}–{b + width - 1}", _bar(_num(base.get(str(b), 0)), top, "bar b"), _bar(_num(head.get(str(b), 0)), top, "bar h")]
            for b in buckets]
    summary = (f"<p>Mean score {float(sc['mean_base']):.1f} → {float(sc['mean_head']):.1f}; {_num(sc['up'])} leads score "
               f"higher, {_num(sc['down'])} lower.</p>")
    rules = ""
    if sc["rules"]:
        rules = _table(["scoring rule", "leads affected", "mean change"],
                       [[f"<code>{_e(r['rule'])}</code>", _e(r["leads"]), _e(fmt_num(r["mean_delta"]))] for r in sc["rules"][:10]],
                       {1, 2})
    return "<h2>Score</h2>" + summary + _legend() + _table(["score band", "leads before", "leads after"], rows, cls="bars") + rules


def _slas(imp: dict[str, Any]) -> str:
    if not imp["slas"]:
        return ""
    rows = [[f"<code>{_e(s['sla'])}</code>", _e(s["leads"]), _e(s["due_changed"]), _e(s["earlier"]), _e(s["later"]),
             _e(fmt_num(s["mean_shift_hours"])) + " h", _e(s["now_applies"]), _e(s["no_longer_applies"])] for s in imp["slas"]]
    return "<h2>SLA due times</h2>" + _table(["SLA", "leads", "due time changed", "earlier", "later", "mean shift",
                                               "now applies", "no longer applies"], rows, set(range(1, 8)))


def _examples(imp: dict[str, Any]) -> str:
    rows = []
    for kind in KINDS:
        for ex in imp["examples"].get(kind, []):
            who = f"<code>{_e(ex['lead'])}</code> {_e(ex.get('name', ''))}<br><span class=small>{_e(ex['source'])}</span>"
            rows.append([_e(kind), who, _e(ex.get("company", "")),
                         f"{_e(ex.get('score_before', ''))} → {_e(ex.get('score_after', ''))}",
                         _e(ex["before"]), _e(ex["after"]), _e(ex["because"])])
    if not rows:
        return ""
    return "<h2>Example leads</h2>" + _table(["change", "lead", "company", "score", "before", "after", "rules responsible"], rows)


def _errors(imp: dict[str, Any]) -> str:
    if not imp["errors"]:
        return ""
    items = "".join(f"<li><code>{_e(x['lead'])}</code> ({_e(x['revision'])}): {_e(x['error'])}</li>" for x in imp["error_examples"])
    return f"<h2>{_num(imp['errors'])} lead(s) could not be evaluated</h2><ul>{items}</ul>"


def report_body(doc: Any) -> str:
    """The report's HTML body (no <html>/<head>) from a `leadops diff --format json` document."""
    if not isinstance(doc, dict):
        raise ImpactDocumentError("expected a JSON object as `leadops diff --format json` writes it")
    missing = [k for k in ("base", "head", "headline", "changes", "impact", "guard") if k not in doc]
    if missing:
        raise ImpactDocumentError(f"not a `leadops diff --format json` result: no {', '.join(repr(m) for m in missing)}")
    try:
        return _body(doc)
    except ImpactDocumentError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ImpactDocumentError(f"not a `leadops diff --format json` result (at {exc!s}); regenerate it with "
                                  "`leadops diff --format json`") from None


def _body(doc: dict[str, Any]) -> str:
    imp = doc["impact"]
    guard = doc["guard"]
    out = [f"<h1>Policy impact: {_e(doc['headline'])}</h1>",
           f"<p class=meta><code>{_e(doc['base']['label'])}</code> → <code>{_e(doc['head']['label'])}</code> · "
           + (f"{_num(imp['leads'])} leads from {_e(doc.get('leads_from', ''))}" if imp else "no leads evaluated")
           + f" · evaluated at {_e(doc.get('evaluated_at', ''))}</p>"]
    if doc.get("guard_line"):
        cls = "guard blocked" if guard.get("blocked") else "guard"
        out.append(f'<p class="{cls}" role="status">{_e(doc["guard_line"])}</p>')
    out += ["<h2>The change in words</h2>", diff_html(doc.get("handbook_changes") or [])]
    if imp and imp["leads"]:
        counts = imp["changed"]
        out.append("<h2>What changes</h2>" + _table(
            ["what changes", "leads", "share"],
            [[_e(k), _e(counts.get(k, 0)), f"{100.0 * _num(counts.get(k, 0)) / _num(imp['leads']):.1f}%"] for k in KINDS], {1, 2}))
        out += [_funnel(imp), _assignees(imp), _thresholds(doc), _matrix(imp),
                _pairs("Route changes", imp["routes"]["moves"]), _pairs("Grade changes", imp["grades"]["moves"]),
                _score(imp), _slas(imp), _examples(imp)]
    if imp:
        out.append(_errors(imp))
    changes = doc["changes"]
    items = "".join(f"<li><strong>{_e(c.get('area', ''))}</strong> {_e(c.get('subject', ''))}: {_e(c.get('text', ''))}</li>"
                    for c in changes)
    out.append(f"<h2>Policy changes ({len(changes)})</h2>" + (f"<ul>{items}</ul>" if items else "<p>No policy changes.</p>"))
    out.append(f"<p class=small>base <code>{_e(doc['base'].get('revision', ''))}</code> · head "
               f"<code>{_e(doc['head'].get('revision', ''))}</code>"
               + (f" · reproduce: <code>{_e(doc['command'])}</code>" if doc.get("command") else "") + "</p>")
    return "\n".join(x for x in out if x)


def report_page(doc: dict[str, Any]) -> str:
    """The complete self-contained page (what `leadops diff --format html` writes)."""
    return page(f"leadops policy impact: {doc.get('headline', '')}", report_body(doc), f"<style>{BAR_CSS}</style>")
