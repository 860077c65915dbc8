"""The policy handbook: the rules of engagement in plain words, rendered from a policy set, and its diff."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from engine.handbook.content import Entry, Handbook, Section, build_handbook, stage_name
from engine.handbook.phrasebook import Phrasebook
from engine.handbook.render import (
    SentenceChange,
    body_html,
    diff_handbooks,
    diff_html,
    diff_markdown,
    page,
    to_html,
    to_markdown,
)

if TYPE_CHECKING:
    from engine.gitops import PolicySource
    from engine.policyset import PolicySet


def handbook(ps: "PolicySet", as_of: date) -> Handbook:
    """The handbook of a loaded policy set, with holidays listed for the year starting at `as_of`."""
    return build_handbook(ps.model, ps.lead_schema.schema, ps.revision, as_of)


def revision_date(src: "PolicySource", policy_dir: str) -> date | None:
    """The UTC date of the commit a policy source was read from (None outside git): the handbook's default
    `as_of`, so one revision always renders the same bytes."""
    if not src.commit:
        return None
    from engine.gitops import open_repo

    commit = open_repo(policy_dir).commit(src.commit)
    return commit.committed_datetime.astimezone(timezone.utc).date()


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


__all__ = ["Handbook", "Section", "Entry", "Phrasebook", "SentenceChange", "build_handbook", "handbook", "stage_name",
           "to_markdown", "to_html", "body_html", "page", "diff_handbooks", "diff_markdown", "diff_html",
           "revision_date", "today_utc"]
