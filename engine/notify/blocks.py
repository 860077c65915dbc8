"""Block Kit messages for notify events: a header, the facts as fields, and the plain `text` Slack shows in
notifications and where blocks cannot be drawn.

Lead data is untrusted: every value is escaped as Slack's mrkdwn requires (&, <, >), so a company called
"<!channel>" cannot ping a channel or forge a link. Times are Slack date tokens (each reader sees their own time
zone) with the UTC time as the fallback.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from engine.notify.events import Event

TITLES = {"assigned": "New {stage} assigned", "warning": "SLA warning", "breach": "SLA breached"}
ICONS = {"assigned": ":inbox_tray:", "warning": ":hourglass_flowing_sand:", "breach": ":rotating_light:"}


def escape(text: Any) -> str:
    """Text safe inside mrkdwn: Slack's three control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%a %d %b %Y %H:%M UTC")


def slack_time(moment: datetime) -> str:
    """A Slack date token: shown in the reader's own time zone, the UTC time where tokens are not drawn."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{plain_time(moment)}>"


def summary(event: Event) -> str:
    """One line saying what happened (the message's `text`, and what --dry-run prints)."""
    who = event.owner or "nobody"
    team = f" ({event.team})" if event.team else ""
    if event.kind == "assigned":
        dues = ", ".join(f"{sla} due {plain_time(due)}" for sla, due in event.due)
        return f"New {event.stage.upper()} {event.lead_id} assigned to {who}{team}: {dues}"
    sla, due = event.due[0]
    if event.kind == "warning":
        left = f", {event.minutes_left:g} business minutes left" if event.minutes_left is not None else ""
        return f"SLA warning: {sla} for {event.lead_id}, owned by {who}{team}, is due {plain_time(due)}{left}"
    to = f"; escalate to {event.manager}" if event.manager else "; no manager declared for the team"
    return f"SLA breached: {sla} for {event.lead_id}, owned by {who}{team}, was due {plain_time(due)}, no touch yet{to}"


def message(event: Event) -> dict[str, Any]:
    """The webhook payload of one event."""
    fields = [("Lead", escape(event.lead_id)), ("Owner", escape(event.owner or "nobody")),
              ("Team", escape(event.team or "none")), ("Stage", escape(event.stage))]
    if event.kind == "assigned":
        fields += [(f"Due ({sla})", slack_time(due)) for sla, due in event.due]
    else:
        sla, due = event.due[0]
        fields += [("SLA", escape(sla)), ("Due", slack_time(due))]
        if event.kind == "warning" and event.minutes_left is not None:
            fields.append(("Business minutes left", f"{event.minutes_left:g}"))
        if event.kind == "breach":
            fields.append(("Escalate to", escape(event.manager or "no manager declared")))
    rendered = [{"type": "mrkdwn", "text": f"*{escape(label)}*\n{value}"} for label, value in fields]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": TITLES[event.kind].format(stage=event.stage.upper()),
                                               "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{ICONS[event.kind]} {escape(summary(event))}"}},
    ]
    for start in range(0, len(rendered), 10):  # a section holds at most 10 fields
        blocks.append({"type": "section", "fields": rendered[start:start + 10]})
    context = f"leadops · policy {escape(event.policy_revision[:12] or 'unknown')} · clock started {slack_time(event.clock_start)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    payload: dict[str, Any] = {"text": escape(summary(event)), "blocks": blocks}
    if event.channel:
        payload["channel"] = event.channel
    return payload
