"""The pages' two small scripts, served from the same origin (/ui/assets/…) so the pages' CSP allows no inline
code. Plain browser JavaScript: no framework, no CDN, no build step. Untrusted values reach the page only
through `textContent` and SVG attributes, never as markup (the impact page inserts markup the server escaped).
"""

# Both pages report progress and errors in one live region (#status); errors become alerts for screen readers.
STATUS_JS = r"""
  var status = document.getElementById("status");
  function say(text, isError) {
    status.textContent = text;
    status.setAttribute("role", isError ? "alert" : "status");
    status.className = isError ? "error" : "ok";
  }
"""

TRY_JS = r"""
(function () {
  "use strict";
""" + STATUS_JS + r"""  var form = document.getElementById("lead-form");
  var box = document.getElementById("lead-json");
  var out = document.getElementById("result");
  var SVG = "http://www.w3.org/2000/svg";

  function controls() { return Array.prototype.slice.call(form.querySelectorAll("[data-path]")); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function table(headers, rows) {
    var head = el("tr", {}, headers.map(function (h) { return el("th", {scope: "col"}, [h]); }));
    var body = rows.map(function (r) { return el("tr", {}, r.map(function (c) { return el("td", {}, [c === null || c === undefined ? "—" : c]); })); });
    return el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }
  function getPath(obj, path) {
    return path.split(".").reduce(function (o, k) { return o && typeof o === "object" ? o[k] : undefined; }, obj);
  }
  function setPath(obj, path, value) {
    var keys = path.split("."), o = obj;
    keys.slice(0, -1).forEach(function (k) {
      if (typeof o[k] !== "object" || o[k] === null || Array.isArray(o[k])) { o[k] = {}; }
      o = o[k];
    });
    o[keys[keys.length - 1]] = value;
  }
  function parseBox() {
    var text = box.value.trim();
    if (!text) { return {}; }
    var value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error("the JSON box must hold one lead object, e.g. {\"id\": \"L-1\"}");
    }
    return value;
  }
  function fillForm() {
    var lead;
    try { lead = parseBox(); } catch (e) { say("Cannot read the JSON box: " + e.message, true); box.focus(); return; }
    document.getElementById("f-id").value = lead.id === undefined || lead.id === null ? "" : String(lead.id);
    controls().forEach(function (c) {
      var v = getPath(lead, c.dataset.path);
      c.value = v === undefined || v === null ? "" : String(v);
    });
    say("Form filled from the JSON box (lists such as activities stay in the box).", false);
  }
  function buildLead() {
    var lead = parseBox();
    var id = document.getElementById("f-id").value.trim();
    if (id) { lead.id = id; }
    controls().forEach(function (c) {
      var raw = c.value.trim();
      if (raw === "") { return; }
      var t = c.dataset.type, v = raw;
      if (t === "integer") { v = parseInt(raw, 10); }
      else if (t === "number") { v = Number(raw); }
      else if (t === "boolean") { v = raw === "true"; }
      setPath(lead, c.dataset.path, v);
    });
    return lead;
  }

  var words = {score: {}, route: {}, stage: {}};  // the handbook's phrasing of each rule (GET /ui/rules)
  var wordsReady = fetch("/ui/rules").then(function (r) { return r.ok ? r.json() : null; })
    .then(function (w) { if (w) { words = w; } }, function () { /* the decision still shows, without words */ });

  function label(stage) { return stage.length <= 3 ? stage.toUpperCase() : stage.charAt(0).toUpperCase() + stage.slice(1); }

  function strip(sla, cal) {
    // one row per local day of the SLA's calendar: open hours shaded, the clock start, escalations and due marked
    var W = 720, L = 120, RH = 24, top = 22, days = cal.days;
    var height = top + days.length * RH + 8;
    var root = svg("svg", {viewBox: "0 0 " + (L + W + 24) + " " + height, width: "100%", role: "img",
                           "aria-label": "Business calendar " + sla.calendar + " from the clock start to the due time"});
    [0, 6, 12, 18, 24].forEach(function (h) {
      var x = L + W * h / 24;
      root.appendChild(svg("line", {x1: x, x2: x, y1: top - 4, y2: height - 8, stroke: "#d0d7de"}));
      root.appendChild(svg("text", {x: x, y: 12, "font-size": 10, "text-anchor": "middle"}, (h < 10 ? "0" : "") + h + ":00"));
    });
    var rowOf = {};
    days.forEach(function (d, i) {
      var y = top + i * RH;
      rowOf[d.date] = y;
      root.appendChild(svg("text", {x: 0, y: y + 15, "font-size": 11}, d.label));
      root.appendChild(svg("rect", {x: L, y: y + 3, width: W, height: RH - 6, fill: "#f3f5f7"}));
      d.open.forEach(function (iv) {
        root.appendChild(svg("rect", {x: L + W * iv[0] / 1440, y: y + 3, width: W * (iv[1] - iv[0]) / 1440,
                                      height: RH - 6, fill: "#aceebb"}));
      });
      if (d.holiday) {
        root.appendChild(svg("text", {x: L + 6, y: y + 15, "font-size": 10, fill: "#57606a"}, "closed: " + d.holiday));
      }
    });
    cal.marks.forEach(function (m, i) {
      var y = rowOf[m.date];
      if (y === undefined) { return; }
      var x = L + W * m.minute / 1440;
      var color = m.kind === "due" ? "#cf222e" : (m.kind === "start" ? "#0969da" : "#bf8700");
      var line = svg("line", {x1: x, x2: x, y1: y, y2: y + RH, stroke: color, "stroke-width": 3});
      line.appendChild(svg("title", {}, m.text));
      root.appendChild(line);
    });
    return root;
  }

  function showSlas(decision, section) {
    (decision.slas || []).forEach(function (s) {
      var marks = [{kind: "start", at: s.clock_starts, text: "clock starts " + s.clock_starts}];
      (s.escalations || []).forEach(function (e) {
        marks.push({kind: "escalation", at: e.at, text: e.when + ": " + e.action + " " + e.to + " at " + e.at});
      });
      marks.push({kind: "due", at: s.due, text: "due " + s.due});
      var box = el("div", {class: "sla"}, [
        el("h3", {}, [s.id + ": due " + s.due]),
        el("p", {}, ["Calendar " + s.calendar + " · clock starts " + s.clock_starts + " · status " + (s.status || "—")
                     + (s.attempts_due ? " · attempts due " + s.attempts_due : "")]),
        el("ul", {class: "marks"}, marks.map(function (m) { return el("li", {class: m.kind}, [m.text]); }))
      ]);
      section.appendChild(box);
      var ats = marks.map(function (m) { return m.at; }).filter(Boolean);
      var query = "from=" + encodeURIComponent(s.clock_starts) + "&to=" + encodeURIComponent(ats[ats.length - 1])
        + ats.map(function (a) { return "&mark=" + encodeURIComponent(a); }).join("");
      fetch("/ui/calendar/" + encodeURIComponent(s.calendar) + "?" + query).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (cal) {
        if (!cal) { return; }
        cal.marks = cal.marks.map(function (m, i) { return Object.assign({}, marks[i], m); });
        box.appendChild(el("figure", {}, [strip(s, cal), el("figcaption", {}, [
          "Green: " + s.calendar + " business hours (" + cal.timezone + "). Blue: clock starts; orange: escalations; red: due."])]));
      });
    });
  }

  function show(doc) {
    var d = doc.decision;
    out.textContent = "";
    var stage = d.stage;
    out.appendChild(el("h2", {id: "stage"}, ["Stage: " + label(stage.to) + " (" + stage.to + ")"]));
    out.appendChild(el("p", {}, [stage.changed ? "Moves from " + label(stage.from) + " to " + label(stage.to)
                                 + (stage.rule ? " by " + stage.rule : "") + "." : "Stays in " + label(stage.to) + "."]));
    if (words.stage[stage.to]) { out.appendChild(el("p", {class: "small"}, [label(stage.to) + ": " + words.stage[stage.to] + "."])); }
    var score = d.score;
    var groups = Object.keys(score.groups || {}).map(function (g) { return g + " " + score.groups[g]; }).join(", ");
    out.appendChild(el("h2", {}, ["Score: " + score.total + (score.grade ? " (grade " + score.grade + ")" : "")]));
    out.appendChild(el("p", {}, [groups]));
    out.appendChild(table(["rule", "group", "points", "when (the handbook's words)", "as evaluated"], (score.fired || []).map(function (f) {
      return [f.rule, f.group, f.points, words.score[f.rule] || "—", f.why];
    })));
    var r = d.route;
    out.appendChild(el("h2", {}, ["Route: " + (r.team ? "team " + r.team : r.queue ? "queue " + r.queue : "owner")
                                  + (r.owner ? " → " + r.owner : "")]));
    out.appendChild(el("p", {}, ["Routing rule " + r.rule + (r.fallback ? " (fallback)" : "")
                                 + (words.route[r.rule] ? ": when " + words.route[r.rule] : "") + "."]));
    var slaSection = el("section", {"aria-labelledby": "sla-h"}, [el("h2", {id: "sla-h"}, ["SLAs: " + (d.slas || []).length])]);
    out.appendChild(slaSection);
    showSlas(d, slaSection);
    var trace = d.trace || [];
    out.appendChild(el("details", {}, [el("summary", {}, ["Trace: " + trace.length + " rules considered"]),
      table(["kind", "rule", "fired", "reason"], trace.map(function (t) { return [t.kind, t.rule, String(t.fired), t.reason || ""]; }))]));
    out.appendChild(el("p", {class: "small"}, ["Policy revision " + doc.revision + " · evaluated at " + doc.now]));
  }

  document.getElementById("fill").addEventListener("click", fillForm);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var lead;
    try { lead = buildLead(); } catch (e) { say("Cannot read the JSON box: " + e.message, true); box.focus(); return; }
    var body = {lead: lead, explain: true};
    var now = document.getElementById("now").value.trim();
    if (now) { body.now = now; }
    say("Deciding…", false);
    wordsReady.then(function () {
      return fetch("/v1/decisions", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    })
      .then(function (resp) { return resp.json().then(function (doc) { return [resp.status, doc]; }); })
      .then(function (res) {
        if (res[0] !== 200) {
          var err = res[1].error || {};
          say("Not decided: " + (err.field ? err.field + ": " : "") + (err.message || ("HTTP " + res[0])), true);
          return;
        }
        show(res[1]);
        say("Decided: " + res[1].decision.stage.to + ".", false);
        var heading = document.getElementById("stage");  // keyboard and screen-reader users land on the answer
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      })
      .catch(function (e) { say("The service did not answer: " + e.message, true); });
  });
})();
"""

IMPACT_JS = r"""
(function () {
  "use strict";
""" + STATUS_JS + r"""  var file = document.getElementById("impact-file");
  var box = document.getElementById("impact-json");
  var out = document.getElementById("report");
  file.addEventListener("change", function () {
    if (!file.files.length) { return; }
    var reader = new FileReader();
    reader.onload = function () { box.value = reader.result; say("Loaded " + file.files[0].name + ".", false); };
    reader.onerror = function () { say("Cannot read " + file.files[0].name + ".", true); };
    reader.readAsText(file.files[0]);
  });
  document.getElementById("impact-form").addEventListener("submit", function (event) {
    event.preventDefault();
    say("Rendering…", false);
    fetch("/ui/impact/render", {method: "POST", headers: {"content-type": "application/json"}, body: box.value})
      .then(function (resp) {
        if (resp.ok) { return resp.text().then(function (html) { out.innerHTML = html; say("Report shown below.", false); out.focus(); }); }
        return resp.json().then(function (doc) { say((doc.error && doc.error.message) || ("HTTP " + resp.status), true); });
      })
      .catch(function (e) { say("The service did not answer: " + e.message, true); });
  });
})();
"""
