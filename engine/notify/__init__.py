"""Tell sales at once: new SQLs assigned, SLA warnings and breaches posted to Slack, each exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engine.notify.blocks import message, summary
from engine.notify.events import DEFAULT_STAGES, Event, directory_of, events_from_facts
from engine.notify.slack import Webhook, Webhooks
from engine.notify.state import NotifyState


@dataclass
class NotifyRun:
    """What one run found and did: events, the ones already sent before, delivered now, and failed."""

    now: datetime
    dry_run: bool
    events: list[Event]
    messages: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # keys sent by an earlier run
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    leads: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # leads that could not be read (from the report)
    waited: float = 0.0

    def text(self) -> str:
        """Readable lines: each message (dry run) or each failure, then the counts."""
        lines = []
        if self.dry_run:
            for event, payload in zip(self.events, self.messages):
                if event.key not in self.skipped:
                    lines.append(f"{payload.get('channel', '(webhook default channel)')}  {summary(event)}")
        lines += [f"not sent: {key}: {why}" for key, why in self.failed]
        pending = len(self.events) - len(self.skipped)
        done = f"{pending} to send (dry run: nothing posted)" if self.dry_run else \
            f"{len(self.sent)} sent, {len(self.failed)} not delivered"
        lines.append(f"{len(self.events)} events from {self.leads} leads: {len(self.skipped)} already sent, {done}"
                     + (f"; {len(self.errors)} leads could not be read" if self.errors else ""))
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "leads": self.leads,
                "errors": len(self.errors), "events": [
                    {"key": e.key, "kind": e.kind, "lead_id": e.lead_id, "owner": e.owner, "team": e.team,
                     "channel": e.channel, "already_sent": e.key in self.skipped, "message": m}
                    for e, m in zip(self.events, self.messages)],
                "sent": self.sent, "failed": [{"key": k, "why": w} for k, w in self.failed],
                "error_records": self.errors}


def notify(leads: Sequence[str] | Iterable[Any], now: datetime, *, policies: str | None = None, rev: str | None = None,
           mapping: str | None = None, activities: str | None = None, since: date | None = None,
           stages: Iterable[str] = DEFAULT_STAGES, state: str | None = None, webhook: Webhook | Webhooks | None = None,
           dry_run: bool = False, jobs: int | None = None) -> NotifyRun:
    """Events of `leads` at `now` (as engine.report reads them: the fact table's SLA status per lead; events.py),
    each a Block Kit message (blocks.py) posted through `webhook` (slack.py) unless the state file (state.py)
    records it as sent; with `dry_run` nothing is posted nor recorded. `leadops notify` is a thin skin over this:

        run = notify(["leads.jsonl"], now, policies="policies", state="notify-state.json", webhook=Webhook(url))
        run.events; run.sent; run.skipped; run.failed; run.text()

    The channels and managers are those
    of the newest policy revision (who to tell is today's question, whichever revision judged the clock).
    Raises PolicyError (policies, mapping), StateError (state file), LeadopsError (unreadable input)."""
    from engine.report import report
    from engine.report.revisions import PolicyTimeline

    if webhook is None and not dry_run:
        raise ValueError("notify needs a webhook unless dry_run")
    timeline = PolicyTimeline.open(policies, rev)
    card = report(leads, now, since=since, jobs=jobs, mapping=mapping, activities=activities,
                  timeline=timeline)
    events = events_from_facts(card.facts.to_pylist(), directory_of(timeline.latest), stages)
    run = NotifyRun(now, dry_run, events, [message(e) for e in events], leads=card.leads, errors=card.errors)
    with NotifyState(state, lock=not dry_run) as sent:
        for event, payload in zip(run.events, run.messages):
            if sent.seen(event.key):
                run.skipped.append(event.key)
                continue
            if dry_run:
                continue
            assert webhook is not None
            delivery = webhook.post(payload)
            if delivery.ok:
                sent.record(event.key, now.isoformat())
                run.sent.append(event.key)
            else:
                run.failed.append((event.key, delivery.detail))
    run.waited = webhook.waited if webhook is not None else 0.0
    return run


__all__ = ["Event", "NotifyRun", "NotifyState", "Webhook", "Webhooks", "events_from_facts", "message", "notify"]
