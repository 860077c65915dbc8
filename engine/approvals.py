"""Which changed policy areas still lack which owner group's approval.

Ownership comes from leadops.yaml `owners`: groups (members = GitHub logins) and areas (files + approver
groups; every listed group must approve, e.g. scoring: marketing AND sales). A change touches an area when
one of the area's files differs between base and head; files no area claims fall to the owners of the area
holding leadops.yaml (the policy set names its lead schema). Ownership is taken from BOTH revisions (union),
so a pull request cannot approve itself by editing `owners`.

Reviews are the GitHub REST API's shape (GET /repos/{o}/{r}/pulls/{n}/reviews):
`[{"user": {"login": …}, "state": "APPROVED", "commit_id": "<sha>", "submitted_at": "…"}, …]`.
Per user only the latest review that carries a verdict counts (APPROVED, CHANGES_REQUESTED or DISMISSED;
COMMENTED and PENDING reviews do not change a verdict, as on GitHub). An approval counts only for the head
commit (a stale approval of an earlier push does not); a DISMISSED review counts for nothing; an
outstanding CHANGES_REQUESTED from an owner blocks the area until that reviewer approves.

The report quotes what each reviewer last wrote (the newest review with a body, whatever its state) and names
approvals from people outside the groups that own the changed areas: approvers read words, not just ticks.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from engine.model import Ownership

VERDICTS = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")
POLICY_SET_FILE = "leadops.yaml"


class ReviewsError(ValueError):
    """The reviews file is not GitHub's reviews JSON."""


# --------------------------------------------------------------------------------------------- reviews


@dataclass(frozen=True)
class Review:
    login: str
    state: str
    commit_id: str
    submitted_at: str
    order: int
    body: str = ""


def parse_reviews(text: str) -> list[Review]:
    """GitHub reviews JSON: one array, or several concatenated (`gh api --paginate` prints one per page)."""
    decoder = json.JSONDecoder()
    items: list[Any] = []
    pos = 0
    text = text.strip()
    if not text:
        return []
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise ReviewsError(f"not JSON: {exc}") from None
        if isinstance(value, dict) and isinstance(value.get("reviews"), list):
            value = value["reviews"]  # {"reviews": [...]} (e.g. a GraphQL-ish wrapper) is accepted too
        if not isinstance(value, list):
            raise ReviewsError(f"expected a JSON array of reviews, got {type(value).__name__}")
        items.extend(value)
        pos = end
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ReviewsError(f"review #{i + 1} is not an object")
        user = item.get("user")
        login = user.get("login") if isinstance(user, dict) else None
        state = item.get("state")
        if not isinstance(login, str) or not isinstance(state, str):
            if "user" in item and user is None and isinstance(state, str):  # deleted ("ghost") account: user null
                continue
            raise ReviewsError(f"review #{i + 1} lacks user.login or state (is this GitHub's reviews JSON?)")
        body = item.get("body")
        out.append(Review(login, state.upper(), str(item.get("commit_id") or ""), str(item.get("submitted_at") or ""), i,
                          body.strip() if isinstance(body, str) else ""))
    return out


def latest_verdicts(reviews: list[Review]) -> dict[str, Review]:
    """login (lower-case) -> that user's latest review with a verdict."""
    latest: dict[str, Review] = {}
    for r in sorted(reviews, key=lambda r: (r.submitted_at, r.order)):
        if r.state in VERDICTS:
            latest[r.login.lower()] = r
    return latest


def latest_comments(reviews: list[Review]) -> list[Review]:
    """Each reviewer's newest review that says something (any state, COMMENTED included), oldest first."""
    latest: dict[str, Review] = {}
    for r in sorted(reviews, key=lambda r: (r.submitted_at, r.order)):
        if r.body:
            latest[r.login.lower()] = r
    return sorted(latest.values(), key=lambda r: (r.submitted_at, r.order))


def quote_markdown(text: str, limit: int = 600) -> str:
    """A reviewer's words as a markdown quote that cannot re-ping people or hide an HTML comment marker."""
    text = text if len(text) <= limit else text[:limit].rstrip() + " …"
    text = text.replace("@", "@\u200b").replace("<!--", "&lt;!--")
    return "\n".join("> " + line for line in text.splitlines() or [""])


# --------------------------------------------------------------------------------------------- changed areas


def _policy_relative(files: dict[str, bytes], root: str) -> dict[str, bytes]:
    return {posixpath.relpath(k, root): v for k, v in files.items()}


def changed_files(base_files: dict[str, bytes], base_root: str, head_files: dict[str, bytes], head_root: str) -> list[str]:
    """Names relative to the policy directory ("scoring.yaml", "../schemas/lead.schema.json") that differ."""
    a = _policy_relative(base_files, base_root)
    b = _policy_relative(head_files, head_root)
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def _area_files(own: Ownership | None) -> dict[str, set[str]]:
    if own is None:
        return {}
    return {area: {posixpath.normpath(f) for f in files} for area, (files, _) in own.areas.items()}


@dataclass
class AreaStatus:
    area: str
    files: list[str]
    required: list[str]  # groups
    approved_by: dict[str, list[str]] = field(default_factory=dict)  # group -> logins (approved head)
    stale: dict[str, list[str]] = field(default_factory=dict)  # group -> logins (approved an older commit)
    changes_requested: dict[str, list[str]] = field(default_factory=dict)  # group -> logins
    missing: list[str] = field(default_factory=list)  # groups still to approve
    blocked: list[str] = field(default_factory=list)  # groups with an outstanding change request

    @property
    def ok(self) -> bool:
        return not self.missing and not self.blocked

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area, "files": self.files, "required": self.required, "approved_by": self.approved_by,
                "stale_approvals": self.stale, "changes_requested": self.changes_requested,
                "missing": self.missing, "blocked": self.blocked, "ok": self.ok}


@dataclass
class ApprovalResult:
    head_sha: str
    areas: list[AreaStatus]
    unowned: list[str]  # changed files no area (and no policy-set area) owns
    groups: dict[str, tuple[str, ...]]
    ignored: list[str]  # notes: dismissed / stale / non-owner reviews
    comments: list[Review] = field(default_factory=list)  # each reviewer's latest words (`latest_comments`)
    outside: dict[str, list[str]] = field(default_factory=dict)  # approver of head -> their groups, none owning a changed area

    def _groups_of(self, login: str) -> list[str]:
        return sorted(g for g, members in self.groups.items() if login.lower() in {m.lower().lstrip("@") for m in members})

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.areas) and not self.unowned

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head_sha, "ok": self.ok, "areas": [a.to_dict() for a in self.areas],
                "unowned_files": self.unowned, "notes": self.ignored,
                "outside_approvals": [{"login": k, "groups": v} for k, v in self.outside.items()],
                "comments": [{"login": r.login, "state": r.state, "submitted_at": r.submitted_at, "commit": r.commit_id,
                              "groups": self._groups_of(r.login), "body": r.body} for r in self.comments]}

    def text(self) -> str:
        if not self.areas and not self.unowned:
            return "no policy area changed: no approvals required"
        lines = []
        for a in self.areas:
            mark = "ok " if a.ok else "MISSING"
            lines.append(f"{mark:<7} {a.area} ({', '.join(a.files)}): needs {' and '.join(a.required)}")
            for g in a.required:
                if g in a.blocked:
                    lines.append(f"          ✗ {g}: changes requested by {', '.join(a.changes_requested[g])}")
                elif g in a.approved_by:
                    lines.append(f"          ✓ {g}: approved by {', '.join(a.approved_by[g])}")
                else:
                    extra = f" (stale approval by {', '.join(a.stale[g])}: re-approve the latest commit)" if g in a.stale else ""
                    lines.append(f"          … {g}: waiting for one of {', '.join(self.groups.get(g, ()))}{extra}")
        for f in self.unowned:
            lines.append(f"MISSING {f}: no area owns this file; add it to owners.areas in leadops.yaml")
        for note in self.ignored:
            lines.append(f"note: {note}")
        for r in self.comments:
            who = ", ".join(self._groups_of(r.login)) or "not an owner"
            lines.append(f"{r.login} ({who}, {r.state.lower().replace('_', ' ')} {r.submitted_at}): "
                         + " ".join(r.body.split())[:300])
        missing = sorted({g for a in self.areas for g in a.missing + a.blocked})
        lines.append("all required approvals present" if self.ok else
                     f"blocked: waiting for {', '.join(missing) or 'area owners'} on {self.head_sha[:12]}")
        return "\n".join(lines)

    def markdown(self) -> str:
        if not self.areas and not self.unowned:
            return "✅ No policy area changed: no approvals required.\n"
        md = [f"{'✅' if self.ok else '⛔'} **Policy approvals for `{self.head_sha[:12]}`**", "",
              "| area | files | needs | status |", "|---|---|---|---|"]
        for a in self.areas:
            st = []
            for g in a.required:
                if g in a.blocked:
                    st.append(f"⛔ {g}: changes requested ({', '.join('@' + x for x in a.changes_requested[g])})")
                elif g in a.approved_by:
                    st.append(f"✅ {g} ({', '.join('@' + x for x in a.approved_by[g])})")
                else:
                    st.append(f"⏳ {g}" + (" (stale approval)" if g in a.stale else ""))
            md.append(f"| {a.area} | {', '.join(a.files)} | {' and '.join(a.required)} | {'<br>'.join(st)} |")
        for f in self.unowned:
            md.append(f"| — | {f} | no owner | ⛔ add it to `owners.areas` |")
        if self.outside:
            md += ["", "**Approvals from outside the owning groups** (they do not count for the changed areas):"]
            md += [f"- @{login} ({', '.join(groups) or 'in no owner group'})" for login, groups in self.outside.items()]
        if self.comments:
            md += ["", "**What reviewers said** (each reviewer's latest comment):", ""]
            for r in self.comments:
                who = ", ".join(self._groups_of(r.login)) or "not an owner"
                md += [f"@{r.login} ({who}) · {r.state.lower().replace('_', ' ')} · {r.submitted_at}", "",
                       quote_markdown(r.body), ""]
        return "\n".join(md).rstrip("\n") + "\n"


def required_areas(base_own: Ownership | None, head_own: Ownership | None,
                   changed: list[str]) -> tuple[dict[str, tuple[list[str], list[str]]], list[str]]:
    """area -> (changed files, required groups) using the union of base and head ownership; plus unowned files."""
    fa, fb = _area_files(base_own), _area_files(head_own)
    approvers: dict[str, list[str]] = {}
    for own in (base_own, head_own):
        if own is None:
            continue
        for area, (_, groups) in own.areas.items():
            lst = approvers.setdefault(area, [])
            lst.extend(g for g in groups if g not in lst)
    owners_of_set = sorted({a for m in (fa, fb) for a, fs in m.items() if POLICY_SET_FILE in fs})
    result: dict[str, tuple[list[str], list[str]]] = {}
    unowned = []
    for name in changed:
        areas = sorted({a for m in (fa, fb) for a, fs in m.items() if name in fs})
        if not areas:
            if owners_of_set:
                areas = owners_of_set[:1]
            else:
                unowned.append(name)
                continue
        for a in areas:
            files, _ = result.setdefault(a, ([], approvers.get(a, [])))
            files.append(name)
    return result, unowned


def check_approvals(base_own: Ownership | None, head_own: Ownership | None, changed: list[str], reviews: list[Review],
                    head_sha: str) -> ApprovalResult:
    areas, unowned = required_areas(base_own, head_own, changed)
    groups: dict[str, tuple[str, ...]] = {}
    for own in (base_own, head_own):  # membership: union as well (either revision's roster may approve)
        if own is None:
            continue
        for g, members in own.groups.items():
            groups[g] = tuple(dict.fromkeys((*groups.get(g, ()), *members)))
    member_of: dict[str, set[str]] = {}
    for g, members in groups.items():
        for m in members:
            member_of.setdefault(m.lower().lstrip("@"), set()).add(g)
    latest = latest_verdicts(reviews)
    notes = []
    for login, r in sorted(latest.items()):
        if login not in member_of:
            if r.state == "APPROVED":
                notes.append(f"approval by {r.login} does not count: not a member of any owner group")
            elif r.state == "CHANGES_REQUESTED":
                notes.append(f"{r.login} requested changes (not an owner: not blocking here)")
        elif r.state == "DISMISSED":
            notes.append(f"review by {r.login} was dismissed and does not count")
        elif r.state == "APPROVED" and r.commit_id != head_sha:
            notes.append(f"approval by {r.login} is for {r.commit_id[:12] or 'an unknown commit'}, not the head "
                         f"{head_sha[:12]}: stale")
    statuses = []
    for area in sorted(areas):
        files, required = areas[area]
        st = AreaStatus(area, sorted(files), list(required))
        for g in required:
            for m in groups.get(g, ()):
                r = latest.get(m.lower().lstrip("@"))
                if r is None:
                    continue
                if r.state == "APPROVED" and r.commit_id == head_sha:
                    st.approved_by.setdefault(g, []).append(r.login)
                elif r.state == "APPROVED":
                    st.stale.setdefault(g, []).append(r.login)
                elif r.state == "CHANGES_REQUESTED":
                    st.changes_requested.setdefault(g, []).append(r.login)
            if g in st.changes_requested:
                st.blocked.append(g)
            elif g not in st.approved_by:
                st.missing.append(g)
        statuses.append(st)
    owning = {g for _, required in areas.values() for g in required}
    outside = {}
    for login, r in sorted(latest.items()):
        if r.state == "APPROVED" and r.commit_id == head_sha and not (member_of.get(login, set()) & owning):
            outside[r.login] = sorted(member_of.get(login, set()))
    return ApprovalResult(head_sha, statuses, unowned, groups, notes, latest_comments(reviews), outside)
