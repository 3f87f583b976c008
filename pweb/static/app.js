// The status page: reads /api/v1/*, follows /api/v1/events, never changes anything.
"use strict";

const PAGE = 50;
const view = { offset: 0, total: 0, shown: new Map(), detail: null, hosts: [], tasks: new Set() };
const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const answer = await fetch(url, { credentials: "same-origin" });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function when(t) {
  if (t === null || t === undefined) return "-";
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + (Date.now() - d > 86400e3 ? " " + d.toLocaleDateString() : "");
}

function ago(t) {
  if (!t) return "-";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 90) return `${s.toFixed(0)} s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function seconds(s) {
  if (s === null || s === undefined) return "-";
  return s < 10 ? s.toFixed(3) + " s" : s < 3600 ? s.toFixed(1) + " s" : (s / 3600).toFixed(2) + " h";
}

function outcomeText(r) {
  if (!r.outcome) return "";
  if (r.outcome === "EXIT") return r.status === 0 ? "OK" : `EXIT ${r.status}`;
  if (r.outcome === "CRASH") return `CRASH ${r.signal}`;
  return r.outcome;
}

function outcomeClass(r) {
  if (!r.outcome) return "";
  return r.outcome === "EXIT" && r.status === 0 ? "o-OK" : r.outcome === "EXIT" ? "o-FAILED" : "o-" + r.outcome;
}

// -- hosts and tasks --------------------------------------------------------------------------

function hostRow(h) {
  const tr = el("tr");
  tr.dataset.host = h.name;
  const agent = h.agent || {};
  const up = h.state === "IDLE" || h.state === "BUSY";
  const history = (h.history || []).slice(-4).map((x) => `${x.state || ""} ${when(x.time)}`).join(", ");
  tr.append(el("td", h.name), el("td", h.state, "s-" + h.state), el("td", h.reason || "", "reason"),
    el("td", up ? `${(h.running || []).length}/${h.agent_slots}` : "-"),
    el("td", agent.clock_offset !== undefined ? `${(agent.clock_offset * 1e3).toFixed(3)} ms` : "-"),
    el("td", agent.rtt !== undefined ? `${(agent.rtt * 1e3).toFixed(2)} ms` : "-"),
    el("td", ago(h.last_pong || h.since)), el("td", h.flaps || 0), el("td", history, "reason"));
  return tr;
}

async function loadHosts() {
  const data = await getJSON("/api/v1/hosts");
  view.hosts = data.hosts;
  $("hosts").tBodies[0].replaceChildren(...data.hosts.map(hostRow));
  fillChoices($("f-host"), data.hosts.map((h) => h.name));
}

const TASK_FIELDS = new Set(["task", "state", "host", "made", "nmax", "running", "pending", "done", "failed", "last", "next"]);
// A rounds task's plan of its window (`check NAME -plan`), and whatever else a task row carries.
function extraFields(t) {
  return Object.entries(t).filter(([k, v]) => !TASK_FIELDS.has(k) && v !== null && v !== undefined)
    .map(([k, v]) => k === "plan" && Array.isArray(v) ? v.join("; ")
      : `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
}

// A pool of sched servers (sched --serve --ha): who leads, since when, the token, and which
// member this page follows (a standby relays the leader's status).
function haText(ha, member) {
  if (!ha || !ha.leader) return "";
  const mine = member ? `; this page follows ${member}, ${member === ha.leader ? "the leader" : "a standby"}` : "";
  return `pool: leader ${ha.leader}, since ${when(ha.since)}, token ${ha.token}, lease ${ha.ttl} s${mine}`;
}

async function loadTasks() {
  const data = await getJSON("/api/v1/tasks");
  $("tasks-note").textContent = data.running ? (data.summary ? `scheduler ${data.summary.scheduler}` : "") : `(${data.error || "no scheduler server"})`;
  $("ha").textContent = haText(data.summary && data.summary.ha, data.member);
  $("tasks").tBodies[0].replaceChildren(...data.tasks.map((t) => {
    const tr = el("tr");
    tr.dataset.task = t.task;
    tr.append(el("td", t.task), el("td", t.state), el("td", t.host),
      el("td", `${t.made}` + (t.nmax !== null && t.nmax !== undefined ? `/${t.nmax}` : "")),
      el("td", t.running), el("td", t.pending), el("td", t.done), el("td", t.failed),
      el("td", t.last || "-"), el("td", t.next ? when(t.next) : "-"), el("td", extraFields(t), "reason"));
    return tr;
  }));
  for (const t of data.tasks) view.tasks.add(t.task);
}

function fillChoices(select, names) {
  const chosen = select.value;
  const have = new Set([...select.options].map((o) => o.value));
  for (const name of names) if (!have.has(name)) select.append(new Option(name, name));
  select.value = chosen;
}

async function loadOverview() {
  const data = await getJSON("/api/v1/overview");
  const c = data.controller;
  const conn = $("conn");
  conn.textContent = c.connected ? `pcontrol: connected (${c.address})` : `pcontrol: ${c.error || "not connected"}`;
  conn.className = "conn " + (c.connected ? "ok" : "bad");
  const st = (c.status || {}).jobs || {};
  $("summary").textContent = c.status ? `${st.PENDING || 0} pending, ${st.BUSY || 0} running, ${st.DONE || 0} done` : "";
  const tasks = new Set([...data.jobs.tasks, ...view.tasks]);
  fillChoices($("f-task"), [...tasks].sort());
  const plotTask = $("plot-task"), hadTask = plotTask.value;
  fillChoices(plotTask, [...tasks].sort());
  if (!hadTask && plotTask.options.length) { plotTask.value = plotTask.options[0].value; plotRuntimes().catch(console.error); }
}

// -- jobs -------------------------------------------------------------------------------------

function jobCells(r) {
  return [el("td", r.id), el("td", r.state, "state s-" + r.state), el("td", outcomeText(r), "outcome " + outcomeClass(r)),
    el("td", r.task || ""), el("td", r.ran_on || r.host || ""), el("td", when(r.submitted)),
    el("td", seconds(r.elapsed)), el("td", (r.argv || []).join(" "), "cmd"), el("td", r.reason || "", "reason")];
}

function jobRow(r) {
  const tr = el("tr", undefined, "job");
  tr.dataset.job = r.id;
  tr.dataset.state = r.state;
  tr.append(...jobCells(r));
  tr.addEventListener("click", () => showDetail(r.id));
  return tr;
}

function filterQuery() {
  const q = new URLSearchParams();
  for (const [key, id] of [["task", "f-task"], ["host", "f-host"], ["outcome", "f-outcome"], ["state", "f-state"]]) {
    if ($(id).value) q.set(key, $(id).value);
  }
  return q;
}

async function loadJobs() {
  const q = filterQuery();
  q.set("offset", view.offset);
  q.set("limit", PAGE);
  const data = await getJSON("/api/v1/jobs?" + q);
  view.total = data.total;
  view.shown = new Map(data.jobs.map((r) => [r.id, r]));
  $("jobs").tBodies[0].replaceChildren(...data.jobs.map(jobRow));
  const last = Math.min(data.total, view.offset + data.jobs.length);
  $("page-info").textContent = data.total ? `${view.offset + 1}–${last} of ${data.total}` : "no jobs";
  $("prev").disabled = view.offset === 0;
  $("next").disabled = last >= data.total;
}

function updateRows(rows) {
  let missing = false;
  const body = $("jobs").tBodies[0];
  for (const r of rows) {
    const tr = body.querySelector(`tr[data-job="${r.id}"]`);
    if (!tr) { missing = true; continue; }
    tr.dataset.state = r.state;
    tr.replaceChildren(...jobCells(r));
    view.shown.set(r.id, r);
    if (view.detail === r.id) showDetail(r.id);
  }
  return missing;
}

// -- one job ------------------------------------------------------------------------------------

function outputText(pre, part) {
  pre.replaceChildren();
  pre.append(part.head.join("\n") + (part.head.length ? "\n" : ""));
  if (part.skipped) pre.append(el("span", `[… ${part.skipped} lines …]\n`, "skipped"));
  if (part.tail.length) pre.append(part.tail.join("\n") + "\n");
}

async function showDetail(id) {
  view.detail = id;
  const data = await getJSON(`/api/v1/jobs/${id}`);
  const j = data.job;
  $("detail-id").textContent = j.id;
  const fields = [["command", (j.argv || []).join(" ")], ["state", j.state], ["outcome", outcomeText(j) || "-"],
    ["reason", j.reason || "-"], ["task", [j.owner, j.task].filter(Boolean).join("/") || "-"],
    ["host", j.ran_on || j.host || "-"], ["submitted", when(j.submitted)], ["started", when(j.started)],
    ["ended", when(j.ended)], ["run time", seconds(j.elapsed)], ["pid", j.pid || "-"],
    ["output", `${j.stdout_bytes} + ${j.stderr_bytes} bytes` + (j.stdout_truncated || j.stderr_truncated ? " (truncated)" : "")]];
  $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  outputText($("detail-stdout"), data.output.stdout);
  outputText($("detail-stderr"), data.output.stderr);
  $("detail").hidden = false;
}

// -- plots --------------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function plotFinished() {
  const data = await getJSON(`/api/v1/plots/finished?hours=${$("plot-hours").value}`);
  const plot = $("plot-finished");
  const W = plot.clientWidth || 900, H = 200, L = 40, B = 20;
  plot.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const keys = Object.keys(data.series).sort();
  const totals = new Array(data.minutes).fill(0);
  for (const k of keys) data.series[k].forEach((n, i) => { totals[i] += n; });
  const top = Math.max(1, ...totals);
  const w = (W - L) / data.minutes;
  const nodes = [svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: 0, x2: L, y2: H - B, class: "axis" }),
    svg("text", { x: 2, y: 12, class: "axis-label" }, String(top)),
    svg("text", { x: L, y: H - 4, class: "axis-label" }, when(data.start)),
    svg("text", { x: W - 60, y: H - 4, class: "axis-label" }, "now")];
  const base = new Array(data.minutes).fill(0);
  for (const k of keys) {
    data.series[k].forEach((n, i) => {
      if (!n) return;
      const h = (n / top) * (H - B - 4);
      base[i] += h;
      const r = svg("rect", { x: L + i * w, y: H - B - base[i], width: Math.max(1, w - 0.5), height: h, class: "c-" + k });
      r.append(svg("title", {}, `${when(data.start + i * 60)}: ${n} ${k}`));
      nodes.push(r);
    });
  }
  plot.replaceChildren(...nodes);
  $("plot-legend").replaceChildren(...keys.map((k) => {
    const s = el("span");
    s.append(el("span", undefined, "swatch c-" + k), `${k} ${data.series[k].reduce((a, b) => a + b, 0)}`);
    return s;
  }));
}

async function plotRuntimes() {
  const task = $("plot-task").value;
  const plot = $("plot-runtimes");
  if (!task) { plot.replaceChildren(svg("text", { x: 50, y: 100, class: "axis-label" }, "no task has finished jobs yet")); return; }
  const data = await getJSON(`/api/v1/plots/runtimes?task=${encodeURIComponent(task)}`);
  const W = plot.clientWidth || 900, H = 200, L = 40, B = 20;
  plot.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = data.points;
  const top = Math.max(0.001, ...pts.map((p) => p.elapsed));
  const t0 = pts.length ? pts[0].ended : 0, t1 = pts.length ? pts[pts.length - 1].ended : 1;
  const span = Math.max(1, t1 - t0);
  const nodes = [svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: 0, x2: L, y2: H - B, class: "axis" }),
    svg("text", { x: 2, y: 12, class: "axis-label" }, seconds(top))];
  for (const p of pts) {
    const c = svg("circle", { cx: L + 4 + ((p.ended - t0) / span) * (W - L - 8), cy: H - B - (p.elapsed / top) * (H - B - 6),
      r: 3, class: p.ok ? "c-OK" : "c-CRASH" });
    c.append(svg("title", {}, `job ${p.id}: ${seconds(p.elapsed)}`));
    nodes.push(c);
  }
  plot.replaceChildren(...nodes);
}

let syncRuns = [];
async function loadSyncs() {
  const data = await getJSON("/api/v1/syncs");
  syncRuns = data.runs;
  const select = $("plot-sync");
  const chosen = select.value;
  select.replaceChildren(...syncRuns.map((r, i) => new Option(`${r.name} ${when(r.ended)}`, String(i))).reverse());
  if (chosen && Number(chosen) < syncRuns.length) select.value = chosen;
  plotSync();
}

function plotSync() {
  const plot = $("plot-sync-offsets");
  const run = syncRuns[Number($("plot-sync").value)];
  if (!run) {
    $("sync-note").textContent = "";
    plot.replaceChildren(svg("text", { x: 50, y: 100, class: "axis-label" }, "no synchronized run has ended"));
    return;
  }
  const skew = run.skew_ms || {};
  $("sync-note").textContent = `${run.verdict}, ${run.succeeded}/${run.total} succeeded, skew max ${skew.max} ms, p95 ${skew.p95} ms`;
  const W = plot.clientWidth || 900, H = 200, L = 60, B = 20;
  plot.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const targets = run.targets.filter((t) => t.start_ms !== null && t.start_ms !== undefined);
  const first = Math.min(...targets.map((t) => t.start_ms));
  const top = Math.max(0.001, ...targets.map((t) => t.start_ms - first));
  const w = Math.min(80, (W - L) / Math.max(1, run.targets.length));
  const nodes = [svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: 0, x2: L, y2: H - B, class: "axis" }),
    svg("text", { x: 2, y: 12, class: "axis-label" }, `${top.toFixed(3)} ms`)];
  run.targets.forEach((t, i) => {
    const label = svg("text", { x: L + i * w + 2, y: H - 4, class: "axis-label" }, `${t.index} ${t.host}`);
    nodes.push(label);
    if (t.start_ms === null || t.start_ms === undefined) return;
    const h = Math.max(1, ((t.start_ms - first) / top) * (H - B - 6));
    const bar = svg("rect", { x: L + i * w + 2, y: H - B - h, width: Math.max(1, w - 4), height: h,
      class: t.outcome === "EXIT 0" || t.status === 0 ? "c-OK" : "c-CRASH" });
    bar.append(svg("title", {}, `target ${t.index} on ${t.host}: +${(t.start_ms - first).toFixed(3)} ms (offset ${t.offset_ms} ms)`));
    nodes.push(bar);
  });
  plot.replaceChildren(...nodes);
}

// -- live updates -------------------------------------------------------------------------------

const timers = new Map();
function soon(key, fn, ms = 500) {
  if (timers.has(key)) return;
  timers.set(key, setTimeout(() => { timers.delete(key); fn(); }, ms));
}

async function refreshAll() {
  await Promise.all([loadOverview(), loadHosts(), loadTasks(), loadJobs()].map((p) => p.catch(console.error)));
}

function follow() {
  const source = new EventSource("/api/v1/events");
  source.onopen = () => { $("live").classList.add("on"); };
  source.onerror = () => { $("live").classList.remove("on"); };
  source.addEventListener("update", (e) => {
    const msg = JSON.parse(e.data);
    if (msg.resync) { soon("all", refreshAll); return; }
    const rows = msg.jobs || [];
    const missing = updateRows(rows);
    // a new job, or (with a filter) a job that may now match or no longer: the server decides
    if (rows.length && ((missing && view.offset === 0) || filterQuery().toString())) soon("jobs", loadJobs);
    if ((msg.jobs || []).some((r) => r.state === "DONE")) {
      soon("plots", () => { plotFinished().catch(console.error); plotRuntimes().catch(console.error); }, 3000);
    }
    if (msg.other || (msg.jobs || []).length) soon("other", () => { loadOverview().catch(console.error); loadSyncs().catch(console.error); loadHosts().catch(console.error); loadTasks().catch(console.error); }, 1000);
  });
}

function start() {
  for (const id of ["f-task", "f-host", "f-outcome", "f-state"]) {
    $(id).addEventListener("change", () => { view.offset = 0; loadJobs(); });
  }
  $("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); loadJobs(); });
  $("next").addEventListener("click", () => { view.offset += PAGE; loadJobs(); });
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; view.detail = null; });
  $("plot-hours").addEventListener("change", plotFinished);
  $("plot-task").addEventListener("change", plotRuntimes);
  $("plot-sync").addEventListener("change", plotSync);
  refreshAll().then(() => Promise.all([plotFinished(), plotRuntimes(), loadSyncs()])).catch(console.error);
  setInterval(() => { plotFinished().catch(console.error); plotRuntimes().catch(console.error); loadSyncs().catch(console.error); }, 30000);
  follow();
}

document.addEventListener("DOMContentLoaded", start);
