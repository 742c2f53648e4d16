// Triage dashboard: polls /api/summary and the server-drawn SVG charts, and runs the
// decision explorer. Plain DOM, no library; data from the API is only ever set as text.
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs || 5000);
const $ = (sel) => document.querySelector(sel);
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) { window.location.assign("/login"); throw new Error("login"); }
  if (!response.ok && response.status !== 404) throw new Error(`${url}: ${response.status}`);
  return { status: response.status, body: await response.json() };
}

async function getText(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.text();
}

function setFigure(name, value, text) {
  for (const el of document.querySelectorAll(`[data-figure="${name}"]`)) {
    el.textContent = text !== undefined ? text : fmt(value);
    if (value === 0) el.setAttribute("data-zero", ""); else el.removeAttribute("data-zero");
  }
}

function fillTable(id, key, rows) {
  const body = document.querySelector(`#${id} tbody`);
  const fresh = document.createElement("tbody");
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset[key] = row[key];
    const name = document.createElement("td");
    name.textContent = row[key];
    tr.appendChild(name);
    for (const outcome of ["suppressed", "raised", "invalid", "total"]) {
      const td = document.createElement("td");
      td.className = "n";
      td.dataset.outcome = outcome;
      td.textContent = fmt(row[outcome]);
      tr.appendChild(td);
    }
    fresh.appendChild(tr);
  }
  body.replaceWith(fresh);
}

function sum(values) { return Object.values(values || {}).reduce((a, b) => a + b, 0); }

async function refresh() {
  const { body: s } = await getJson("/api/summary");
  const d = s.decisions;
  setFigure("total", d.total);
  setFigure("suppressed", d.suppressed);
  setFigure("raised", d.raised);
  setFigure("invalid", d.invalid);
  setFigure("suppression_rate", d.suppression_rate,
            d.suppression_rate === null ? "–" : `${(100 * d.suppression_rate).toFixed(1)} %`);
  setFigure("tasks_created", s.tasks.created);
  setFigure("tasks_delivered", s.tasks.delivered.accepted || 0);
  setFigure("tasks_delivery_failed", (s.tasks.delivered.failed || 0) + (s.tasks.delivered.conflict || 0));
  setFigure("open_household_moves", s.live.open_household_moves);
  setFigure("waiting_events", s.live.waiting_events);
  setFigure("consumer_lag", s.live.consumer_lag);
  setFigure("dead_letters", s.problems.dead_letters);
  setFigure("dead_letters_other", sum(s.problems.dead_letters_by_reason) - (s.problems.dead_letters_by_reason.invalid || 0));
  setFigure("could_not_check", s.problems.could_not_check);
  setFigure("lookup_failures", s.problems.lookup_failures);
  setFigure("late_events", s.problems.late_events);
  setFigure("shadow_disagreements", s.shadow.disagreements);
  $("#ruleset-active").textContent = s.ruleset.active || "none";
  $("#ruleset-shadow").textContent = s.ruleset.shadow || "none";
  const log = s.log;
  $("#log-state").textContent = !log.enabled ? "decision log off"
    : log.error ? `decision log unavailable: ${log.error}`
    : `decision log (${log.backend}): ${fmt(log.behind)} records behind`;
  $("#updated").textContent = new Date().toLocaleTimeString();
  fillTable("table-rule", "rule", s.by_rule);
  fillTable("table-type", "type", s.by_type);
  fillTable("table-unit", "unit", s.by_unit);
  fillTable("table-ruleset", "ruleset", s.by_ruleset);
  const clock = $("#clock").value, bucket = $("#bucket").value;
  const charts = [
    ["#chart-series", `/api/chart?name=series&clock=${clock}&bucket=${bucket}`],
    ["#chart-rule", "/api/chart?name=rule"],
    ["#chart-type", "/api/chart?name=type"],
    ["#chart-unit", "/api/chart?name=unit"],
  ];
  await Promise.all(charts.map(async ([sel, url]) => {
    // the server draws the SVG and escapes every label in it
    $(sel).innerHTML = await getText(url);
  }));
  document.body.dataset.loaded = String(d.total);
}

async function poll() {
  try { await refresh(); $("#status").textContent = ""; }
  catch (err) { $("#status").textContent = `update failed: ${err.message}`; }
  setTimeout(poll, POLL_MS);
}

// --- the explorer -------------------------------------------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function factsList(facts) {
  const entries = Object.entries(facts || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return el("div", "no facts recorded", "facts muted");
  return el("div", entries.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n"), "facts");
}

function renderDecision(decision, tasks) {
  const box = el("div", undefined, `decision ${decision.outcome}`);
  box.dataset.eventId = decision.event_id || "";
  const h = el("h3");
  h.appendChild(el("span", decision.outcome, `badge ${decision.outcome}`));
  h.appendChild(document.createTextNode(` event ${decision.event_id || "(no id)"} — rule `));
  h.appendChild(el("code", decision.rule, "rule"));
  box.appendChild(h);
  const kind = [decision.event_source, decision.event_type].filter(Boolean).join("/");
  box.appendChild(el("div", `type ${kind || "–"} · registered ${decision.registered_at || "–"} · ` +
    `decided ${decision.decided_at} · ruleset ${decision.ruleset} · correlation group ` +
    `${decision.correlation_id || "none"} · score ${decision.score}`, "muted"));
  box.appendChild(el("p", decision.reason, "reason"));
  if (decision.error) box.appendChild(el("p", `error: ${decision.error}`, "error"));
  const byTask = Object.fromEntries((tasks || []).map((t) => [t.task_id, t]));
  for (const v of decision.cases || []) {
    const c = el("div", undefined, "verdict");
    c.dataset.caseId = v.case_id;
    const line = el("div");
    line.appendChild(el("strong", `case ${v.case_id}`));
    line.appendChild(document.createTextNode(` (${v.unit}) `));
    line.appendChild(el("span", v.outcome, `badge ${v.outcome}`));
    line.appendChild(document.createTextNode(` ${v.rule}, score ${v.score}` +
      (v.payment_hold ? " — payment held" : "")));
    c.appendChild(line);
    c.appendChild(el("div", `${v.title}: ${v.reason}`));
    c.appendChild(factsList(v.facts));
    if (v.task_id) {
      const t = byTask[v.task_id];
      c.appendChild(el("div", t ? `task ${t.task_id}: “${t.title}” → ${t.unit}; events ${t.event_ids.join(", ")}`
                                : `task ${v.task_id}`, "task"));
    }
    box.appendChild(c);
  }
  return box;
}

async function explore(event) {
  event.preventDefault();
  const kind = $("#explore-kind").value;
  const id = $("#explore-id").value.trim();
  const out = $("#explore-result");
  out.replaceChildren(el("p", "searching …", "muted"));
  if (!id) { out.replaceChildren(el("p", "enter an id", "muted")); return; }
  const { status, body } = await getJson(`/api/${kind}?id=${encodeURIComponent(id)}`);
  const fresh = [];
  if (status === 404) {
    fresh.push(el("p", `no decision about ${kind} ${id} in the decision log`, "muted"));
  } else if (kind === "event") {
    fresh.push(renderDecision(body.decision, body.tasks));
  } else {
    fresh.push(el("p", `case ${body.case_id}: ${body.decisions.length} decisions, ` +
                       `${body.tasks.length} tasks (newest first)`, "summary"));
    for (const d of body.decisions) fresh.push(renderDecision(d, body.tasks));
  }
  out.replaceChildren(...fresh);
  out.dataset.loaded = `${kind}:${id}`;
}

$("#explore").addEventListener("submit", (e) => { explore(e).catch((err) => {
  $("#explore-result").replaceChildren(el("p", `search failed: ${err.message}`, "error"));
}); });
$("#clock").addEventListener("change", () => refresh().catch(() => {}));
$("#bucket").addEventListener("change", () => refresh().catch(() => {}));
poll();
