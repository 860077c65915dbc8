"""Activity helpers read a per-lead index built once: same answers as a scan, no rescans inside filters."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW, PolicyDir
from engine.errors import EvaluationError
from engine.expr import MISSING, functions
from engine.expr import activity_index
from engine.expr.sandbox import EVAL_LIMIT, MAX_ACTIVITY_TYPES_PER_CALL
from engine.leads import LeadSchema

SCHEMA = {"type": "object", "properties": {"activities": {"type": "array", "items": {
    "type": "object", "properties": {"type": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
                                     "url": {"type": "string"}}}}}}  # fmt: skip
LEADS = LeadSchema.from_json_schema(SCHEMA)
T = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
KINDS = ["a", "b", "c"]


def scan_count(acts, now, kinds, within_days, url):
    """The definition, as a plain scan."""
    start = None if within_days is None else now - timedelta(days=min(within_days, 36_600))
    return sum(1 for a in acts if a.get("type") in kinds and isinstance(a.get("at"), datetime) and a["at"] <= now
               and (start is None or a["at"] >= start) and (url is None or a.get("url", MISSING) == url))


def scan_last(acts, now, kinds):
    latest = MISSING
    for a in acts:
        if a.get("type") in kinds and a["at"] <= now and (latest is MISSING or a["at"] > latest):
            latest = a["at"]
    return latest


zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=10)), timezone(timedelta(hours=-5))])
activity = st.fixed_dictionaries(
    {"type": st.sampled_from(KINDS), "at": st.builds(lambda h, z: (T + timedelta(hours=h)).astimezone(z).isoformat(),
                                                    st.integers(-200, 30), zones)},
    optional={"url": st.sampled_from(["/p", "/q"])},
)


@settings(max_examples=300, deadline=None)
@given(acts=st.lists(activity, max_size=25), kinds=st.lists(st.sampled_from(KINDS + ["z"]), min_size=1, max_size=4),
       within=st.one_of(st.none(), st.integers(0, 10), st.floats(0, 10)), url=st.sampled_from([None, "/p", "/q"]))
def test_index_answers_like_a_scan(acts, kinds, within, url) -> None:
    lead = LEADS.prepare({"activities": acts})
    prepared = lead["activities"]
    kinds_arg = tuple(kinds) if len(kinds) > 1 else kinds[0]
    kind_tuple = tuple(kinds)
    assert functions.count_activities(lead, T, kinds_arg, within, url) == scan_count(prepared, T, kind_tuple, within, url)
    assert functions.has_activity(lead, T, kinds_arg, within) == (scan_count(prepared, T, kind_tuple, within, None) > 0)
    got, want = functions.last_activity_at(lead, T, kinds_arg), scan_last(prepared, T, kind_tuple)
    if want is MISSING:
        assert got is MISSING
    else:
        assert got == want and got.utcoffset() == want.utcoffset()  # the same instant, written the same way


def test_activity_types_per_call_are_bounded() -> None:
    lead = LEADS.prepare({"activities": [{"type": "a", "at": T.isoformat()}]})
    many = tuple(f"t{i}" for i in range(MAX_ACTIVITY_TYPES_PER_CALL + 1))
    with pytest.raises(EvaluationError) as info:
        functions.count_activities(lead, T, many)
    assert info.value.code == EVAL_LIMIT
    assert functions.count_activities(lead, T, ("a",) * 10_000) == 1  # repeats count once, and are not a cost


def test_a_per_activity_filter_builds_the_index_once(example_set: PolicyDir, monkeypatch) -> None:
    example_set.patch("scoring.yaml", 'where: startswith(activity.url, "/pricing")',
                      'where: count_activities("page_view") >= 0 and startswith(activity.url, "/pricing")')
    ps = example_set.load()
    built = []
    real = activity_index.ActivityIndex

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, activities):
            built.append(len(activities))
            super().__init__(activities)

    monkeypatch.setattr(activity_index, "ActivityIndex", Counting)
    n = 3_000
    lead = {"id": "L", "email": "a@b.co", "activities": [
        {"type": "page_view", "at": (NOW - timedelta(minutes=i)).isoformat(), "url": "/pricing"} for i in range(n)]}
    decision = ps.evaluate(lead, NOW).to_dict()
    assert built == [n]  # one index for the lead, however many activities the filter looked at
    assert any(f["rule"] == "pricing-page" for f in decision["score"]["fired"])
