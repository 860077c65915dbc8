"""`leadops notify` (engine.notify): events read off the scorecard, Block Kit messages, and delivery to a real
HTTP server on loopback that answers 200, 429 (Retry-After) and 500 in turn — exactly once across runs."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import cli
from engine.notify import NotifyState, Webhook, message, notify
from engine.notify.events import Event
from engine.notify.slack import WebhookError, webhook_url
from engine.notify.state import StateError

REPO = Path(__file__).resolve().parents[1]
T = datetime.fromisoformat


class Recorder:
    """A webhook on loopback: records every request (time, body) and answers from a script, then 200."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers = recorder.script.pop(0) if recorder.script else (200, {})
                recorder.requests.append({"at": time.monotonic(), "path": self.path, "status": status,
                                          "body": json.loads(body)})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                text = b"ok" if status == 200 else b"rate_limited" if status == 429 else b"internal_error"
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[str]:
        return [r["body"]["text"] for r in self.requests if r["status"] == 200]


@pytest.fixture
def recorder():
    made: list[Recorder] = []

    def make(script: list[tuple[int, dict[str, str]]] = ()) -> Recorder:
        made.append(Recorder(list(script)))
        return made[-1]
    yield make
    for r in made:
        r.server.shutdown()
        r.server.server_close()


def sql_lead(ident: str, entered: str, owner: str = "chloe.smith") -> dict[str, Any]:
    """A South East Queensland SQL (team seq-smb, Brisbane hours 08:30-17:00; sql-first-response: 4 h, warning 75 %)."""
    return {"id": ident, "email": f"{ident.lower()}@coralsoft.com.au", "country": "AU", "state": "QLD",
            "employees": 12, "source": "website", "created_at": entered,
            "stage_history": [{"stage": "lead", "at": entered}, {"stage": "sql", "at": entered}],
            "owner_history": [{"owner": owner, "at": entered}], "activities": []}


LEADS = [sql_lead("NEW", "2026-11-23T13:00:00+10:00"),   # at 14:00: open (assigned)
         sql_lead("RISK", "2026-11-23T10:30:00+10:00"),  # due 14:30, warning 13:30: at risk
         sql_lead("LATE", "2026-11-23T09:00:00+10:00")]  # due 13:00: breached, never touched


def records(leads: list[dict[str, Any]]) -> list[tuple[str, int, dict[str, Any]]]:
    return [("test", i + 1, lead) for i, lead in enumerate(leads)]


def run(policies: Path, now: str, **kw: Any):
    return notify(records(LEADS), T(now), policies=str(policies), jobs=1, **kw)


def test_events_assignment_warning_breach_with_channel_and_manager(example_set) -> None:
    result = run(example_set.policies, "2026-11-23T14:00:00+10:00", dry_run=True)
    kinds = sorted((e.kind, e.lead_id) for e in result.events)
    assert kinds == [("assigned", "LATE"), ("assigned", "NEW"), ("assigned", "RISK"), ("breach", "LATE"),
                     ("warning", "RISK")]
    assert {e.channel for e in result.events} == {"#sales-seq-smb"}  # teams.yaml: seq-smb's slack_channel
    breach = next(e for e in result.events if e.kind == "breach")
    assert breach.manager == "maria.chen" and breach.owner == "chloe.smith"
    assert breach.due == (("sql-first-response", T("2026-11-23T13:00:00+10:00")),)
    warning = next(e for e in result.events if e.kind == "warning")
    assert warning.at == T("2026-11-23T13:30:00+10:00") and warning.minutes_left == 30.0
    payload = message(breach)
    assert payload["channel"] == "#sales-seq-smb" and payload["blocks"][0]["text"]["text"] == "SLA breached"
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert "*Escalate to*\nmaria.chen" in fields
    assert any(f.startswith("*Due*\n<!date^" + str(int(T("2026-11-23T13:00:00+10:00").timestamp()))) for f in fields)


def test_a_touch_or_a_later_stage_sends_nothing(example_set) -> None:
    touched = sql_lead("DONE", "2026-11-23T09:00:00+10:00")
    touched["activities"] = [{"type": "call_attempt", "at": "2026-11-23T09:30:00+10:00", "actor": "chloe.smith",
                              "direction": "outbound"}]
    result = notify(records([touched]), T("2026-11-23T14:00:00+10:00"), policies=str(example_set.policies),
                    dry_run=True, jobs=1)
    assert result.events == []


def test_exactly_once_across_two_runs_and_a_429(example_set, recorder, tmp_path: Path) -> None:
    server = recorder([(200, {}), (429, {"Retry-After": "1"}), (500, {})])
    state = tmp_path / "state.json"
    with Webhook(server.url, interval=0.05, backoff=0.05) as hook:
        first = run(example_set.policies, "2026-11-23T14:00:00+10:00", state=str(state), webhook=hook)
    assert len(first.sent) == 5 and first.failed == [] and first.skipped == []
    statuses = [r["status"] for r in server.requests]
    assert statuses == [200, 429, 500, 200, 200, 200, 200]  # the second message: retried after 429, then 500
    assert server.requests[2]["at"] - server.requests[1]["at"] >= 0.95  # Retry-After: 1 honoured
    assert server.requests[1]["body"] == server.requests[2]["body"] == server.requests[3]["body"]
    assert sorted(json.loads(state.read_text())["sent"]) == sorted(first.sent)

    with Webhook(server.url, interval=0.05, backoff=0.05) as hook:  # a rerun: nothing new, nothing posted
        again = run(example_set.policies, "2026-11-23T14:00:00+10:00", state=str(state), webhook=hook)
    assert len(server.requests) == 7 and again.sent == [] and sorted(again.skipped) == sorted(first.sent)

    with Webhook(server.url, interval=0.05, backoff=0.05) as hook:  # later: only what happened since
        later = run(example_set.policies, "2026-11-23T16:30:00+10:00", state=str(state), webhook=hook)
    assert sorted(k.split(":")[0] + ":" + k.split(":")[1] for k in later.sent) == ["breach:RISK", "warning:NEW"]
    delivered = server.delivered()
    assert len(delivered) == len(set(delivered)) == 7  # every event delivered exactly once
    assert all(r["path"] == "/services/T000/B000/secret" for r in server.requests)


def test_undelivered_messages_are_not_recorded_and_go_out_next_run(example_set, recorder, tmp_path: Path) -> None:
    server = recorder([(500, {})] * 3 + [(404, {})])
    state = tmp_path / "state.json"
    with Webhook(server.url, interval=0.0, backoff=0.01, max_attempts=3) as hook:
        first = run(example_set.policies, "2026-11-23T14:00:00+10:00", state=str(state), webhook=hook)
    assert len(first.failed) == 2 and len(first.sent) == 3  # 3 x 500: gave up (bounded); 404: final at once
    assert "gave up after 3 attempts: 500" in first.failed[0][1] and "404" in first.failed[1][1]
    assert [r["status"] for r in server.requests][:4] == [500, 500, 500, 404]
    with Webhook(server.url, interval=0.0) as hook:
        second = run(example_set.policies, "2026-11-23T14:00:00+10:00", state=str(state), webhook=hook)
    assert sorted(second.sent) == sorted(k for k, _ in first.failed) and second.failed == []


def test_pacing_keeps_about_one_message_a_second(recorder) -> None:
    server = recorder()
    clock = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock[0] += s
    with Webhook(server.url, interval=1.0, sleep=sleep, clock=lambda: clock[0]) as hook:
        for i in range(3):
            assert hook.post({"text": f"m{i}"}).ok
    assert waits == [1.0, 1.0] and len(server.requests) == 3


def test_overlapping_runs_wait_for_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with NotifyState(path) as first:
        first.record("a", "2026-11-23T14:00:00+10:00")
        with pytest.raises(StateError, match="another notify run holds"):
            with NotifyState(path, wait=0.2):
                pass
    with NotifyState(path) as second:
        assert second.seen("a") and not second.seen("b")
    path.write_text("{not json")
    with pytest.raises(StateError, match="not a notify state file"):
        with NotifyState(path):
            pass
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".state.json.")] == []  # no temp files left


def test_lead_data_cannot_ping_channels_or_forge_links() -> None:
    at = T("2026-11-23T14:00:00+10:00")
    event = Event("breach", "<!channel> <https://evil.example|click>", "sql", "a&b", "seq-smb", at, at,
                  (("sql-first-response", at),), "#sales", "maria.chen", "sql-first-response")
    text = json.dumps(message(event))
    assert "<!channel>" not in text and "<https://evil" not in text and "&lt;!channel&gt;" in text
    assert "a&amp;b" in text


def test_webhook_url_comes_from_env_or_a_file_outside_the_policies(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LEADOPS_SLACK_WEBHOOK_URL", raising=False)
    with pytest.raises(WebhookError, match="no Slack webhook URL"):
        webhook_url()
    monkeypatch.setenv("LEADOPS_SLACK_WEBHOOK_URL", "http://hooks.example.com/x")
    with pytest.raises(WebhookError, match="not a webhook URL"):  # plain http only on loopback
        webhook_url()
    (tmp_path / "policies").mkdir()
    inside = tmp_path / "policies" / "hook.txt"
    inside.write_text("https://hooks.slack.com/services/T/B/x\n")
    with pytest.raises(WebhookError, match="must not live in the policy directory"):
        webhook_url(str(inside), str(tmp_path / "policies"))
    outside = tmp_path / "hook.txt"
    outside.write_text("https://hooks.slack.com/services/T/B/x\n")
    assert webhook_url(str(outside), str(tmp_path / "policies")) == "https://hooks.slack.com/services/T/B/x"


def test_cli_dry_run_on_the_example_data_prints_assignment_warning_and_breach(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = ["notify", str(REPO / "examples/report/leads.jsonl"), "--policies", str(REPO / "policies"), "--rev", "HEAD",
            "--now", "2026-11-25T11:00:00+10:00", "--since", "2026-11-20", "--dry-run", "--state", str(state)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any(x.startswith("#sales-") and "New SQL L-" in x and "assigned to" in x for x in lines)
    assert any(x.startswith("#sales-") and "SLA warning: sql-first-response" in x for x in lines)
    assert any("SLA breached:" in x and "escalate to" in x for x in lines)
    assert lines[-1] == "23 events from 600 leads: 0 already sent, 23 to send (dry run: nothing posted)"
    assert list(tmp_path.iterdir()) == []  # a dry run records nothing, takes no lock
    j = CliRunner().invoke(cli, [*args, "--format", "json"])
    doc = json.loads(j.stdout)
    assert {e["kind"] for e in doc["events"]} == {"assigned", "warning", "breach"}
    assert all(e["message"]["blocks"][0]["type"] == "header" for e in doc["events"])


def test_cli_needs_a_webhook_unless_dry_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LEADOPS_SLACK_WEBHOOK_URL", raising=False)
    r = CliRunner().invoke(cli, ["notify", str(REPO / "examples/report/leads.jsonl"), "--now",
                                 "2026-11-25T11:00:00+10:00", "--state", str(tmp_path / "s.json")])
    assert r.exit_code == 1 and "LEADOPS_SLACK_WEBHOOK_URL" in r.output and "Traceback" not in r.output


def test_slack_channel_is_optional_checked_and_changes_no_decision(example_set) -> None:
    import re

    import engine
    from engine.errors import PolicyError
    from engine.render import to_json

    with_channels = engine.load_policies(example_set.policies, revision="r")
    example_set.write("teams.yaml", re.sub(r"(?m)^ *slack_channel: .*\n|, slack_channel: \"[^\"]*\"", "",
                                           example_set.text("teams.yaml")))
    without = engine.load_policies(example_set.policies, revision="r")
    assert all(t.slack_channel is None for t in without.model.teams.values())
    now = T("2026-11-23T14:00:00+10:00")
    for path in sorted((REPO / "scenarios" / "leads").glob("*.json")):
        lead = json.loads(path.read_text())
        assert to_json(with_channels.evaluate(lead, now).to_dict()) == to_json(without.evaluate(lead, now).to_dict())
    from engine.semantic_diff import semantic_diff

    said = [str(c) for c in semantic_diff(with_channels.model, without.model)]
    assert any("seq-smb" in c and "slack channel" in c and "#sales-seq-smb" in c for c in said), said
    example_set.patch("teams.yaml", "  - id: apac\n", "  - id: apac\n    slack_channel: Sales APAC\n")
    with pytest.raises(PolicyError) as err:
        engine.load_policies(example_set.policies)
    assert any("slack_channel" in d.message for d in err.value.diagnostics)


def test_cli_posts_once_through_a_webhook_file_then_says_nothing_new(example_set, recorder, tmp_path: Path) -> None:
    server = recorder([(429, {"Retry-After": "0"})])
    hook = tmp_path / "webhook.txt"
    hook.write_text(server.url + "\n")
    leads = tmp_path / "leads.jsonl"
    leads.write_text("".join(json.dumps(lead) + "\n" for lead in LEADS[1:]))  # RISK and LATE: 4 events
    args = ["notify", str(leads), "--policies", str(example_set.policies), "--now", "2026-11-23T14:00:00+10:00",
            "--state", str(tmp_path / "state.json"), "--webhook-file", str(hook)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == "4 events from 2 leads: 0 already sent, 4 sent, 0 not delivered"
    assert [r["status"] for r in server.requests] == [429, 200, 200, 200, 200]
    assert all(r["body"]["channel"] == "#sales-seq-smb" for r in server.requests)
    assert server.url not in first.output  # the secret is never printed
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "4 already sent, 0 sent, 0 not delivered" in second.stdout
    assert len(server.requests) == 5


def test_each_channel_its_own_webhook_else_the_default(example_set, recorder, tmp_path: Path) -> None:
    from engine.notify import Webhooks
    from engine.notify.slack import webhook_urls

    team, default = recorder(), recorder()
    hooks = tmp_path / "hooks.txt"
    hooks.write_text(f"# one webhook per team channel (a Slack app's webhook posts only to its channel)\n\n"
                     f"#sales-seq-smb {team.url}\n{default.url}\n")
    urls = webhook_urls(str(hooks))
    assert urls == {"#sales-seq-smb": team.url, None: default.url}
    with Webhooks(urls, interval=0.0) as sink:
        result = run(example_set.policies, "2026-11-23T14:00:00+10:00", state=str(tmp_path / "s.json"), webhook=sink)
        assert len(result.sent) == 5 and len(team.requests) == 5 and default.requests == []
        assert sink.post({"text": "x", "channel": "#elsewhere"}).ok and len(default.requests) == 1
    with Webhooks({"#sales-seq-smb": team.url}, interval=0.0) as only:
        assert "no webhook for channel #elsewhere" in only.post({"text": "x", "channel": "#elsewhere"}).detail
    hooks.write_text(f"sales {team.url}\n")
    with pytest.raises(WebhookError, match=r"hooks.txt:1: expected a URL, or a channel"):
        webhook_urls(str(hooks))
