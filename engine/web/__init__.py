"""Read-only web pages of `leadops serve` (/ui/): the handbook, "try a lead" and the impact report viewer."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from engine import jsonstrict
from engine.handbook import body_html, handbook
from engine.handbook.render import page
from engine.impact_html import BAR_CSS, ImpactDocumentError, report_body
from engine.policyset import parse_instant
from engine.web.leadform import lead_form_fields
from engine.web.scripts import IMPACT_JS, TRY_JS

MAX_REPORT_BYTES = 8 * 1024 * 1024  # an uploaded `leadops diff --format json` result
MAX_STRIP_DAYS = 31
CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
PAGES = (("/ui/", "leadops"), ("/ui/handbook", "Handbook"), ("/ui/try", "Try a lead"), ("/ui/impact", "Impact report"))
UI_CSS = """
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.3rem}
header{border-bottom:1px solid #d0d7de;margin-bottom:1rem;padding:.4rem 0}nav a[aria-current]{font-weight:700}
.field{display:inline-flex;flex-direction:column;margin:.3rem 1rem .3rem 0;min-width:14rem}.field small{color:#57606a;max-width:18rem}
fieldset{border:1px solid #d0d7de;margin:.6rem 0}label{font-weight:600}input,select,textarea,button{font:inherit;padding:.25rem}
textarea{width:100%;font-family:ui-monospace,monospace}button{margin:.4rem .6rem .4rem 0;padding:.35rem .9rem}
#status.error{color:#cf222e;font-weight:600}.marks li.due{color:#cf222e}.marks li.start{color:#0969da}.marks li.escalation{color:#9a6700}
figure{margin:.5rem 0}figcaption{color:#57606a;font-size:.85em}
"""


def _frame(title: str, current: str, body: str, script: str = "") -> HTMLResponse:
    links = " ".join(f'<a href="{path}"{" aria-current=page" if path == current else ""}>{html.escape(name)}</a>'
                     for path, name in PAGES)
    content = (f'<a class="skip" href="#main">Skip to content</a><header><nav aria-label="leadops pages">{links}</nav>'
               f'</header><main id="main" tabindex="-1">{body}</main>'
               + (f'<script src="/ui/assets/{script}"></script>' if script else ""))
    return HTMLResponse(page(title, content, f"<style>{UI_CSS}{BAR_CSS}</style>"), headers=HEADERS)


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "invalid-report" if status == 400 else "ui-error", "message": message}},
                        status_code=status, headers=HEADERS)


def _bundle_date(active: Any) -> date:
    """The handbook's `as_of` for a served bundle: the day it was signed (the same bundle, the same page)."""
    issued = getattr(active.verified, "issued_at", None)
    return datetime.fromtimestamp(issued, timezone.utc).date() if issued else active.loaded_at.date()


def _unavailable() -> HTMLResponse:
    body = "<h1>No policy loaded</h1><p>The service has no verified bundle yet; see <a href=\"/healthz\">/healthz</a>.</p>"
    response = _frame("leadops: no policy", "", body)
    response.status_code = 503
    return response


def attach_impact_report(app: Any, path: str) -> None:
    """Show a `leadops diff --format json` file on /ui/impact (`leadops serve --impact FILE`); rendered once, now,
    so a bad file is refused at start-up (ValueError with the reason) rather than on a page view."""
    from pathlib import Path

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the impact report {path}: {exc.strerror}") from None
    try:
        rendered = report_body(jsonstrict.loads(data))
    except ValueError as exc:  # malformed JSON or ImpactDocumentError
        raise ValueError(f"{path}: {exc}") from None
    app.state.impact_report = (Path(path).name, rendered)


def routes(service: Any) -> list[Route]:
    """The /ui/ routes for a `PolicyService` (engine/server.py appends them to the JSON API's routes)."""

    async def index(request: Request) -> Response:
        active = service.active
        about = (f"<p>Serving <strong>{html.escape(active.policy_set.name)} {html.escape(active.policy_set.version)}</strong>"
                 f", revision <code>{html.escape(active.revision)}</code>.</p>") if active else "<p>No policy loaded yet.</p>"
        body = ("<h1>leadops</h1>" + about + "<ul>"
                '<li><a href="/ui/handbook">The handbook</a>: the rules of engagement in plain words.</li>'
                '<li><a href="/ui/try">Try a lead</a>: stage, score, route and SLA due times for one lead.</li>'
                '<li><a href="/ui/impact">Impact report</a>: read a <code>leadops diff --format json</code> result.</li>'
                "</ul><p>The JSON API: <a href=\"/openapi.json\">/openapi.json</a>.</p>")
        return _frame("leadops", "/ui/", body)

    async def handbook_page(request: Request) -> Response:
        active = service.active
        if active is None:
            return _unavailable()
        book = handbook(active.policy_set, _bundle_date(active))
        return _frame(book.title, "/ui/handbook", body_html(book))

    async def try_page(request: Request) -> Response:
        active = service.active
        if active is None:
            return _unavailable()
        fields = lead_form_fields(active.policy_set.lead_schema.schema)
        body = f"""<h1>Try a lead</h1>
<p>Fill the form, paste a lead as JSON, or both: filled fields override the JSON; lists such as activities come from
the JSON box. The lead is decided by the served policy <code>{html.escape(active.revision)}</code> through
<code>POST /v1/decisions</code>.</p>
<form id="lead-form" novalidate>
<div class="field"><label for="f-id">Lead id</label><input type="text" id="f-id" name="id" value="try-1" required></div>
<div class="field"><label for="now">Decide at (now)</label><input type="text" id="now" name="now"
 placeholder="2026-11-20T09:00:00+10:00" aria-describedby="now-hint"><small id="now-hint">ISO 8601 with an offset;
 empty: the service's current time.</small></div>
{fields}
<div><label for="lead-json">Lead as JSON</label>
<textarea id="lead-json" name="lead-json" rows="10" spellcheck="false" aria-describedby="json-hint"></textarea>
<small id="json-hint">One lead object, as <code>leadops eval</code> reads it.</small></div>
<button type="button" id="fill">Fill the form from the JSON</button><button type="submit" id="decide">Decide</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<section id="result" aria-live="polite" aria-label="Decision"></section>"""
        return _frame("leadops: try a lead", "/ui/try", body, "try.js")

    async def impact_page(request: Request) -> Response:
        served = getattr(request.app.state, "impact_report", None)
        if served is not None:
            name, rendered = served
            body = (f'<p class="meta">The report this service was started with (<code>{html.escape(name)}</code>); '
                    f'<a href="#impact-form">open another one</a> below.</p><section aria-label="Served impact report">'
                    f"{rendered}</section><hr>")
        else:
            body = ""
        body += """<h1>Impact report</h1>
<p>Open a <code>leadops diff --format json</code> result (from CI or your machine) to read it as approvers do.</p>
<form id="impact-form">
<div><label for="impact-file">Report file (.json)</label> <input type="file" id="impact-file" accept=".json,application/json"></div>
<div><label for="impact-json">…or paste the JSON</label><textarea id="impact-json" name="impact-json" rows="8"
 spellcheck="false"></textarea></div>
<button type="submit" id="render">Show the report</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<section id="report" tabindex="-1" aria-label="Impact report"></section>"""
        return _frame("leadops: impact report", "/ui/impact", body, "impact.js")

    async def rule_words(request: Request) -> Response:
        """The handbook's words per scoring rule, routing rule and stage, for the try page's tables."""
        active = service.active
        if active is None:
            return _problem(503, "no verified bundle is loaded yet")
        words: dict[str, dict[str, str]] = {"score": {}, "route": {}, "stage": {}}
        for section in handbook(active.policy_set, _bundle_date(active)).sections:
            for entry in section.rows:
                kind, _, rest = entry.key.partition(":")
                if kind == "scoring":
                    words["score"][rest.partition(":")[2]] = entry.cells[1]
                elif kind == "route":
                    words["route"][rest] = entry.cells[2]
                elif kind == "stage":
                    words["stage"][rest] = entry.cells[3]
        return JSONResponse(words, headers=HEADERS)

    async def render_impact(request: Request) -> Response:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_REPORT_BYTES:
                return _problem(413, f"the report is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MB")
        try:
            doc = jsonstrict.loads(data)
        except ValueError as exc:
            return _problem(400, f"not JSON: {exc}; paste the output of `leadops diff --format json`")
        try:
            return HTMLResponse(report_body(doc), headers=HEADERS)
        except ImpactDocumentError as exc:
            return _problem(400, str(exc))

    async def calendar_days(request: Request) -> Response:
        """Local open hours per day of one calendar between two instants, and marks as local (date, minute)."""
        active = service.active
        if active is None:
            return _problem(503, "no verified bundle is loaded yet")
        cal = active.policy_set.model.calendars.get(request.path_params["cid"])
        if cal is None:
            return _problem(404, f"no calendar {request.path_params['cid']!r} in the served policy")
        try:
            start = parse_instant(request.query_params.get("from", ""))
            end = parse_instant(request.query_params.get("to", ""))
            marks = [parse_instant(m) for m in request.query_params.getlist("mark")][:50]
        except ValueError:
            return _problem(400, "from, to and mark must be ISO 8601 date-times with an offset")
        first, last = start.astimezone(cal.zone).date(), max(start, end).astimezone(cal.zone).date()
        last = min(last, first + timedelta(days=MAX_STRIP_DAYS - 1))
        days = []
        day = first
        while day <= last:
            midnight = datetime(day.year, day.month, day.day, tzinfo=cal.zone)
            spans = [[_minutes(a.astimezone(cal.zone), midnight), _minutes(b.astimezone(cal.zone), midnight)]
                     for a, b in cal.open_intervals(day)]
            days.append({"date": day.isoformat(), "label": day.strftime("%a %d %b"), "open": spans,
                         "holiday": cal.holiday_name(day)})
            day += timedelta(days=1)
        local = [m.astimezone(cal.zone) for m in marks]
        return JSONResponse({"calendar": cal.id, "timezone": cal.timezone, "days": days,
                             "marks": [{"date": m.date().isoformat(), "minute": m.hour * 60 + m.minute} for m in local]},
                            headers=HEADERS)

    async def redirect(request: Request) -> Response:
        return Response(status_code=307, headers={"Location": "/ui/"})

    def asset(text: str) -> Any:
        async def serve(request: Request) -> Response:
            return Response(text, media_type="text/javascript", headers=HEADERS)
        return serve

    return [
        Route("/ui", redirect, methods=["GET"]),
        Route("/ui/", index, methods=["GET"]),
        Route("/ui/handbook", handbook_page, methods=["GET"]),
        Route("/ui/try", try_page, methods=["GET"]),
        Route("/ui/impact", impact_page, methods=["GET"]),
        Route("/ui/impact/render", render_impact, methods=["POST"]),
        Route("/ui/calendar/{cid}", calendar_days, methods=["GET"]),
        Route("/ui/rules", rule_words, methods=["GET"]),
        Route("/ui/assets/try.js", asset(TRY_JS), methods=["GET"]),
        Route("/ui/assets/impact.js", asset(IMPACT_JS), methods=["GET"]),
    ]


def _minutes(t: datetime, midnight: datetime) -> int:
    """Minutes since local midnight, clamped to the day (0–1440), counted in wall-clock time."""
    if t.date() > midnight.date():
        return 1440
    return t.hour * 60 + t.minute
