"""The handbook and its diff as markdown or as self-contained HTML (inline CSS, no scripts, no fetches)."""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

from engine.handbook.content import Entry, Handbook, Section

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1rem 1.5rem;color:#1b1f24}
h1{font-size:1.6rem;margin:.4rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}code{background:#eef1f4;padding:0 .25rem;border-radius:3px;font-size:.9em}
.meta{color:#57606a}ins{background:#dafbe1;text-decoration:none}del{background:#ffebe9}
nav a{margin-right:.8rem}a{color:#0550ae}a:focus,button:focus,input:focus,textarea:focus,select:focus{outline:3px solid #fb8c00;outline-offset:1px}
"""


# ------------------------------------------------------------------ markdown


def _md_inline(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(hb: Handbook) -> str:
    out = [f"# {hb.title}", "", hb.description, "",
           f"Policy revision `{hb.revision}` · holidays listed from {hb.as_of.isoformat()}", ""]
    for s in hb.sections:
        out += [f"## {s.title}", ""]
        if s.intro:
            out += [s.intro, ""]
        if s.notes:
            out += [f"- {n.sentence}" for n in s.notes] + [""]
        if s.rows and s.columns:
            out += ["| " + " | ".join(s.columns) + " |", "|" + "---|" * len(s.columns)]
            out += ["| " + " | ".join(_md_inline(c) for c in r.cells) + " |" for r in s.rows]
            out.append("")
        elif s.rows:
            out += [f"- {r.sentence}" for r in s.rows] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------ HTML


def inline_html(text: str) -> str:
    """Escaped text with `code` spans (the phrasebook's fallback) as <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def slug(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def section_html(s: Section) -> str:
    out = [f'<section id="{slug(s.key)}"><h2>{html.escape(s.title)}</h2>']
    if s.intro:
        out.append(f"<p>{inline_html(s.intro)}</p>")
    if s.notes:
        out.append("<ul>" + "".join(f"<li>{inline_html(n.sentence)}</li>" for n in s.notes) + "</ul>")
    if s.rows and s.columns:
        head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in s.columns)
        body = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in r.cells) + "</tr>" for r in s.rows)
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    elif s.rows:
        out.append("<ul>" + "".join(f"<li>{inline_html(r.sentence)}</li>" for r in s.rows) + "</ul>")
    out.append("</section>")
    return "".join(out)


def body_html(hb: Handbook) -> str:
    """The handbook without <html>/<head>: for a page that has its own frame (the service's /ui/handbook)."""
    toc = "".join(f'<a href="#{slug(s.key)}">{html.escape(s.title)}</a> ' for s in hb.sections)
    return "\n".join([f"<h1>{html.escape(hb.title)}</h1>", f"<p>{inline_html(hb.description)}</p>",
                      f'<p class="meta">Policy revision <code>{html.escape(hb.revision)}</code> · holidays listed from '
                      f"{hb.as_of.isoformat()}</p>", f'<nav aria-label="Sections">{toc}</nav>',
                      *(section_html(s) for s in hb.sections)])


def page(title: str, body: str, extra_head: str = "") -> str:
    """A complete, self-contained HTML document (inline CSS only)."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style>{extra_head}</head><body>\n{body}\n</body></html>\n")


def to_html(hb: Handbook) -> str:
    return page(hb.title, body_html(hb))


# ------------------------------------------------------------------ diff


@dataclass(frozen=True)
class SentenceChange:
    kind: str  # added | removed | changed
    section: str
    key: str
    before: str = ""
    after: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "section": self.section, "key": self.key, "before": self.before, "after": self.after}


def diff_handbooks(old: Handbook, new: Handbook) -> list[SentenceChange]:
    """Sentences added, removed and changed between two handbooks, matched by what they are about (their key)."""
    a, b = old.entries(), new.entries()
    out = []
    for key in b:
        if key not in a:
            out.append(SentenceChange("added", b[key][0], key, after=b[key][1]))
        elif a[key][1] != b[key][1]:
            out.append(SentenceChange("changed", b[key][0], key, a[key][1], b[key][1]))
    out += [SentenceChange("removed", a[key][0], key, before=a[key][1]) for key in a if key not in b]
    return out


def _word_marks(before: str, after: str, mark: tuple[str, str], side: str) -> str:
    """`before` or `after` with the words that differ wrapped in `mark` (open, close)."""
    wa, wb = before.split(" "), after.split(" ")
    words = wa if side == "before" else wb
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        lo, hi = (i1, i2) if side == "before" else (j1, j2)
        chunk = " ".join(words[lo:hi])
        if not chunk:
            continue
        if op == "equal":
            out.append(chunk)
        else:  # punctuation stays outside the mark: "**60**," not "**60,**"
            core = chunk.rstrip(",.;:")
            out.append(f"{mark[0]}{core}{mark[1]}{chunk[len(core):]}" if core else chunk)
    return " ".join(out)


def diff_markdown(changes: list[SentenceChange]) -> str:
    if not changes:
        return "The handbook reads the same: no rule of engagement changes in words."
    n = len(changes)
    out = [f"{n} sentence{'s' if n != 1 else ''} of the handbook change{'s' if n == 1 else ''}:", ""]
    for c in changes:
        if c.kind == "changed":
            out.append(f"- **Changed** ({c.section}): {_word_marks(c.before, c.after, ('~~', '~~'), 'before')}  \n"
                       f"  now: {_word_marks(c.before, c.after, ('**', '**'), 'after')}")
        elif c.kind == "added":
            out.append(f"- **Added** ({c.section}): {c.after}")
        else:
            out.append(f"- **Removed** ({c.section}): ~~{c.before}~~")
    return "\n".join(out)


def diff_markdown_dicts(changes: list[dict[str, str]]) -> str:
    """`diff_markdown` of the JSON form (as a report carries it)."""
    return diff_markdown([SentenceChange(**c) for c in changes])


def diff_text(changes: list[dict[str, str]]) -> str:
    """One line per sentence for terminals: '  changed (Section): before → after'."""
    lines = []
    for c in changes:
        if c["kind"] == "changed":
            lines.append(f"  changed ({c['section']}): {c['before']}\n      now: {c['after']}")
        else:
            lines.append(f"  {c['kind']} ({c['section']}): {c['after'] or c['before']}")
    return "\n".join(lines) or "  the handbook reads the same"


def diff_html(changes: list[dict[str, str]]) -> str:
    """The same diff from its JSON form (`SentenceChange.to_dict`), for HTML reports."""
    if not changes:
        return "<p>The handbook reads the same: no rule of engagement changes in words.</p>"
    items = []
    for c in changes:
        sec = html.escape(c["section"])
        if c["kind"] == "changed":
            before = _word_marks(html.escape(c["before"]), html.escape(c["after"]), ("<del>", "</del>"), "before")
            after = _word_marks(html.escape(c["before"]), html.escape(c["after"]), ("<ins>", "</ins>"), "after")
            items.append(f"<li><strong>Changed</strong> ({sec}): {before}<br>now: {after}</li>")
        elif c["kind"] == "added":
            items.append(f"<li><strong>Added</strong> ({sec}): <ins>{html.escape(c['after'])}</ins></li>")
        else:
            items.append(f"<li><strong>Removed</strong> ({sec}): <del>{html.escape(c['before'])}</del></li>")
    return '<ul class="handbook-diff">' + "".join(items) + "</ul>"


__all__ = ["to_markdown", "to_html", "body_html", "page", "diff_handbooks", "diff_markdown", "diff_html",
           "diff_markdown_dicts", "diff_text",
           "SentenceChange", "Entry", "CSS"]
