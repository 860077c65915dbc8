"""The read-only pages of `leadops serve` in a real Chromium against a real server on loopback (signed bundle):
try a lead, the handbook, the impact report viewer, and the offline HTML report."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest

import engine
from engine import handbook as hb
from engine.impact import Report, analyse, default_leads
from engine.impact_html import report_page
from engine.semantic_diff import semantic_diff
from engine.server import BackgroundServer, create_app
from engine.signing import generate_keypair
from engine.thresholds import changed_thresholds
from tests.test_impact import SQL_60, head_with
from tests.test_server import signed_bundle

REPO = Path(__file__).resolve().parent.parent
ICP = REPO / "scenarios" / "leads" / "icp-enterprise-brisbane.json"
NOW = "2026-11-20T08:00:00+00:00"  # Friday 18:00 in Brisbane, the day the ICP lead requested a demo


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    keys = generate_keypair(tmp_path_factory.mktemp("keys"), "web")
    bundle = tmp_path_factory.mktemp("svc") / "bundle.tar.gz"
    bundle.write_bytes(signed_bundle(keys, "rev-web", 1))
    with BackgroundServer(create_app(bundle, keys.public_path, poll_interval=0.5)) as srv:
        yield srv


@pytest.fixture(scope="module")
def known_diff() -> dict:
    """The impact of raising the SQL bar from 50 to 60 on the scenario leads, as `leadops diff --format json` writes it."""
    base = engine.load_policies(REPO / "policies")
    head = head_with(SQL_60)
    when = datetime.fromisoformat(NOW)
    changes = semantic_diff(base.model, head.model)
    imp = analyse(base, head, default_leads(REPO), when, changes, progress=False)
    words = [c.to_dict() for c in hb.diff_handbooks(hb.handbook(base, when.date()), hb.handbook(head, when.date()))]
    rep = Report("main", "sql-60", "base", "head", when, changes, imp, "the scenarios", None, False, "leadops diff",
                 words, changed_thresholds(base.model, head.model))
    return json.loads(json.dumps(rep.to_dict()))


def clean(page) -> None:
    assert page.console_errors == [] and page.external_requests == []


def unlabelled_controls(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter(c => !c.labels || c.labels.length === 0).map(c => c.id || c.name)""")


def test_try_a_lead_shows_sql_and_its_due_time(server, page, artifacts_dir) -> None:
    lead = json.loads(ICP.read_text())
    want = engine.load_policies(REPO / "policies").evaluate(lead, datetime.fromisoformat(NOW)).to_dict()
    assert want["stage"]["to"] == "sql"
    due = {s["id"]: s["due"] for s in want["slas"]}["sql-first-response"]
    page.goto(server.url + "/ui/")
    page.locator("#main").get_by_role("link", name="Try a lead").click()
    assert unlabelled_controls(page) == []
    page.get_by_label("Lead as JSON").fill(ICP.read_text())
    page.get_by_role("button", name="Fill the form from the JSON").click()
    assert page.get_by_label("Number of employees").input_value() == "1200"
    assert page.get_by_label("Industry").input_value() == "software"
    page.get_by_label("Decide at (now)").fill(NOW)
    page.get_by_label("Decide at (now)").press("Enter")  # the keyboard submits the form
    page.locator("#stage").wait_for()
    assert page.locator("#stage").inner_text() == "Stage: SQL (sql)"
    result = page.locator("#result")
    assert f"sql-first-response: due {due}" in result.inner_text()
    assert f"Score: {want['score']['total']} (grade {want['score']['grade']})" in result.inner_text()
    assert "the number of employees is at least 1000" in result.inner_text()  # the rules in the handbook's words
    page.locator("figure svg line[stroke='#cf222e']").first.wait_for(state="attached")  # the due time on the calendar strip
    page.screenshot(path=str(artifacts_dir / "ui-try.png"), full_page=True)
    clean(page)


def test_try_reports_a_bad_lead_precisely(server, page) -> None:
    page.goto(server.url + "/ui/try")
    page.get_by_label("Lead as JSON").fill('{"id": "x", "employees": "many"}')
    page.get_by_role("button", name="Decide").click()
    status = page.get_by_role("alert")
    status.wait_for()
    assert "employees" in status.inner_text()
    page.get_by_label("Lead as JSON").fill("[1]")
    page.get_by_role("button", name="Decide").click()
    page.wait_for_function("document.getElementById('status').textContent.includes('one lead object')")
    assert page.external_requests == []


def test_handbook_page_shows_the_sql_threshold(server, page, artifacts_dir) -> None:
    page.goto(server.url + "/ui/handbook")
    row = page.locator("#stages tr", has_text="SQL").filter(has_text="sales").first
    assert "the total score is at least 50" in row.inner_text()
    assert page.get_by_role("heading", name="Who gets which lead").is_visible()
    page.screenshot(path=str(artifacts_dir / "ui-handbook.png"))
    clean(page)


def test_impact_page_shows_the_counts_of_a_known_diff(server, page, artifacts_dir, known_diff, tmp_path) -> None:
    path = tmp_path / "impact.json"
    path.write_text(json.dumps(known_diff))
    sql = next(r for r in known_diff["impact"]["funnel"]["stages"] if r["stage"] == "sql")
    assert sql["head"] < sql["base"]
    page.goto(server.url + "/ui/impact")
    assert unlabelled_controls(page) == []
    page.get_by_label("Report file (.json)").set_input_files(str(path))
    page.wait_for_function("document.getElementById('impact-json').value.length > 0")
    page.get_by_role("button", name="Show the report").click()
    report = page.locator("#report")
    report.get_by_role("heading", name="Funnel").wait_for()
    row = report.locator("table.bars tr", has_text="SQL").first.inner_text()
    assert re.findall(r"\d+", row) == [str(sql["base"]), str(sql["head"])]
    assert known_diff["headline"] in report.inner_text()
    assert "at least 60" in report.inner_text()  # the change in words
    page.screenshot(path=str(artifacts_dir / "ui-impact.png"), full_page=True)
    clean(page)


def test_impact_page_refuses_other_json(server, page) -> None:
    page.goto(server.url + "/ui/impact")
    page.get_by_label("…or paste the JSON").fill('{"lead": {}}')
    page.get_by_role("button", name="Show the report").click()
    page.get_by_role("alert").wait_for()
    assert "not a `leadops diff --format json` result" in page.get_by_role("alert").inner_text()


def test_html_report_opens_offline(page, known_diff, tmp_path, artifacts_dir) -> None:
    path = tmp_path / "impact.html"
    path.write_text(report_page(known_diff), encoding="utf-8")
    page.goto(path.as_uri())
    assert page.get_by_role("heading", name="Funnel").is_visible()
    assert page.get_by_role("heading", name=re.compile("Near the SQL entry cut-off")).is_visible()
    page.screenshot(path=str(artifacts_dir / "impact-report.png"), full_page=True)
    clean(page)


def test_pages_are_locked_down_and_the_api_is_unchanged(server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for path in ("/ui/", "/ui/handbook", "/ui/try", "/ui/impact"):
            r = c.get(path)
            assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
            assert "<script>" not in r.text and "http://" not in r.text.replace("http://www.w3.org", "")
        assert c.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
        bad = c.post("/ui/impact/render", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"]
        cal = c.get("/ui/calendar/brisbane", params={"from": "2026-12-24T09:00:00+10:00", "to": "2026-12-29T09:00:00+10:00",
                                                      "mark": "2026-12-24T13:30:00+10:00"}).json()
        days = {d["date"]: d for d in cal["days"]}
        assert days["2026-12-24"]["open"] == [[510, 720]]  # Christmas Eve early close at 12:00
        assert days["2026-12-25"]["open"] == [] and days["2026-12-25"]["holiday"] == "Christmas Day"
        assert cal["marks"] == [{"date": "2026-12-24", "minute": 810}]
        assert c.get("/ui/calendar/atlantis", params={"from": NOW, "to": NOW}).status_code == 404
        assert c.get("/ui/calendar/brisbane", params={"from": "soon", "to": NOW}).status_code == 400
        paths = set(c.get("/openapi.json").json()["paths"])
        assert not any(p.startswith("/ui") for p in paths)


def test_impact_page_shows_the_report_the_server_was_started_with(tmp_path, known_diff) -> None:
    from click.testing import CliRunner

    from cli import cli
    from engine.web import attach_impact_report

    keys = generate_keypair(tmp_path, "web2")
    bundle = tmp_path / "bundle.tar.gz"
    bundle.write_bytes(signed_bundle(keys, "rev-web2", 1))
    report = tmp_path / "impact.json"
    report.write_text(json.dumps(known_diff))
    app = create_app(bundle, keys.public_path, watch=False)
    attach_impact_report(app, str(report))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        text = c.get("/ui/impact").text
    assert "impact.json" in text and html.escape(known_diff["headline"]) in text and "<h2>Funnel</h2>" in text
    bad = tmp_path / "bad.json"
    bad.write_text('{"leads": []}')
    r = CliRunner().invoke(cli, ["serve", "--bundle", str(bundle), "--key", str(keys.public_path), "--impact", str(bad)])
    assert r.exit_code == 1 and "bad.json: not a `leadops diff --format json` result" in r.output
