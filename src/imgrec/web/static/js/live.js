// The live panel: polls GET /api/v1/status about once a second and draws the fleet.

import { ApiError, apiFetch } from "./api.js";
import { drawChart } from "./charts.js";

const POLL_MS = 1000;
const UNAVAILABLE_POLL_MS = 5000;
const MIN_WINDOW_S = 60;
const MAX_WINDOW_S = 5 * 60;
const STATES = ["starting", "ready", "busy", "draining"];
const STATE_TEXT = { starting: "starting", ready: "idle", busy: "busy", draining: "draining" };

const $ = (id) => document.getElementById(id);

function fmtRate(value) {
  if (!value) return "0";
  return value >= 10 ? Math.round(value).toString() : value.toFixed(1);
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return { value: "–", unit: "" };
  if (ms >= 1000) return { value: (ms / 1000).toFixed(ms >= 10000 ? 0 : 1), unit: " s" };
  return { value: Math.round(ms).toString(), unit: " ms" };
}

function fmtClock(unixS) {
  return new Date(unixS * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit",
    second: "2-digit" });
}

function fmtAge(seconds) {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export class LivePanel {
  constructor(root) {
    this.root = root;
    this.last = null;
    this.timer = null;
    this.spokenWorkers = null;
    this.speakTimer = null;
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.schedule(0);
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.last && this.drawCharts(this.last), 150);
    });
  }

  start() {
    this.schedule(0);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
  }

  async tick() {
    if (document.hidden) return; // resumed by visibilitychange
    let next = POLL_MS;
    try {
      const status = await apiFetch("/api/v1/status", { timeoutMs: 4000 });
      this.render(status);
    } catch (err) {
      next = this.renderProblem(err);
    }
    this.schedule(next);
  }

  setState(state, text) {
    this.root.dataset.state = state;
    $("live-pill-text").textContent = text;
  }

  renderProblem(err) {
    const code = err instanceof ApiError ? err.code : "network";
    if (code === "not_found" || err.status === 404) {
      this.showUnavailable("This server does not report its fleet. Classifying photos still " +
        "works; the panel fills in when status appears.");
      this.setState("unavailable", "Unavailable");
      return UNAVAILABLE_POLL_MS;
    }
    if (err.status === 401 || err.status === 403) {
      this.showUnavailable("The service needs an API key to show its fleet. Enter it under " +
        "“API key” at the top of the page.");
      this.setState("unavailable", "Needs API key");
      return UNAVAILABLE_POLL_MS;
    }
    // Keep the last picture on screen through a short outage; say we are reconnecting.
    if (!this.last) this.showUnavailable("Can't reach the service right now. Retrying…");
    this.setState("offline", "Reconnecting…");
    return 2000;
  }

  showUnavailable(text) {
    $("live-unavailable-text").textContent = text;
    $("live-unavailable").hidden = false;
    $("live-body").hidden = true;
    $("live-mode").textContent = "";
    this.last = null;
  }

  renderCost(cost) {
    const perImage = cost ? cost.worker_seconds_per_image : null;
    $("m-cost").textContent = perImage == null ? "–" : perImage.toPrecision(2);
    this.root.dataset.costPerImage = perImage == null ? "" : String(perImage);
    const sub = ["since start, idle and booting time included"];
    if (cost && cost.price_per_1000_images != null) {
      sub.unshift(`about $${cost.price_per_1000_images.toFixed(4)} per 1,000 photos on ` +
        `${cost.worker_kind}`);
    }
    $("m-cost-sub").textContent = sub.join(" · ");
  }

  render(status) {
    $("live-unavailable").hidden = true;
    $("live-body").hidden = false;
    this.setState("live", "Live");
    this.last = status;
    const { queue, workers, scaling, throughput } = status;

    this.root.dataset.workers = String(workers.total);
    this.root.dataset.queue = String(queue.visible);
    const modeText = scaling.mode === "autoscale"
      ? `Autoscaling between ${scaling.min} and ${scaling.max} workers`
      : `Fixed size: ${plural(workers.total, "worker")}, autoscaling off`;
    // "embedded (/long/state/dir)": the kind is what a person needs; the rest goes in a tooltip.
    const backendKind = String(status.backend).split(" (")[0];
    $("live-mode").textContent = `${modeText} · ${backendKind}`;
    $("live-mode").title = status.backend;

    $("m-queue").textContent = String(queue.visible);
    const queueSub = [`waiting · ${queue.in_flight} in progress`];
    if (queue.dead_letter) queueSub.push(`${queue.dead_letter} dead-lettered`);
    const bulk = status.bulk ? status.bulk.visible + status.bulk.in_flight : 0;
    if (bulk) queueSub.push(`${bulk} batch items (served after these)`);
    this.renderCost(status.cost);
    $("m-queue-sub").textContent = queueSub.join(" · ");
    $("m-workers").textContent = String(workers.total);
    const busy = workers.by_state.busy || 0;
    $("m-workers-sub").textContent = workers.total ? `${busy} busy` : "none running";
    $("m-rate").textContent = fmtRate(throughput.answered_per_s);
    const p50 = fmtMs(throughput.latency_ms.p50);
    const p95 = fmtMs(throughput.latency_ms.p95);
    $("m-p50").textContent = p50.value;
    $("m-p50-unit").textContent = p50.unit;
    $("m-p95").textContent = p95.unit ? `median · p95 ${p95.value}${p95.unit}` : "median";

    this.renderStates(workers);
    this.drawCharts(status);
    this.renderDecisions(scaling);
    this.renderWorkers(workers, status.time);
    this.speak(workers);
  }

  renderStates(workers) {
    const bar = $("state-bar");
    const total = workers.total || 0;
    bar.replaceChildren(...STATES.filter((s) => workers.by_state[s]).map((s) => {
      const seg = document.createElement("span");
      seg.className = `seg st-${s}`;
      seg.style.flexGrow = String(workers.by_state[s]);
      return seg;
    }));
    bar.classList.toggle("empty", total === 0);
    $("state-legend").replaceChildren(...STATES.map((s) => {
      const item = document.createElement("li");
      item.className = `st-${s}`;
      item.dataset.state = s;
      const n = workers.by_state[s] || 0;
      item.innerHTML = `<span class="swatch" aria-hidden="true"></span>`;
      item.append(`${n} ${STATE_TEXT[s]}`);
      if (!n) item.classList.add("zero");
      return item;
    }));
  }

  drawCharts(status) {
    const tMax = status.time;
    const h = status.history || [];
    // A fresh server has seconds of history: show whole minutes of it, from 1 up to 5.
    const span = h.length ? tMax - h[0].t : 0;
    const windowS = Math.min(MAX_WINDOW_S, Math.max(MIN_WINDOW_S, Math.ceil(span / 60) * 60));
    const tMin = tMax - windowS;
    const minutes = `${windowS / 60} ${windowS === 60 ? "minute" : "minutes"}`;
    const pts = (key) => h.map((row) => [row.t, row[key]]);
    drawChart(document.querySelector("#chart-queue svg"), { tMin, tMax, minMax: 4,
      integer: true, series: [
      { points: pts("visible"), cls: "s-a", area: true },
      { points: pts("in_flight"), cls: "s-b" },
    ] });
    drawChart(document.querySelector("#chart-workers svg"), { tMin, tMax, integer: true,
      minMax: status.scaling.max || 2, series: [
        { points: pts("busy"), cls: "s-a", area: true, step: true },
        { points: pts("workers"), cls: "s-c", step: true },
      ] });
    drawChart(document.querySelector("#chart-rate svg"), { tMin, tMax, minMax: 5, series: [
      { points: pts("answered_per_s"), cls: "s-d", area: true },
    ] });
    drawChart(document.querySelector("#chart-latency svg"), { tMin, tMax, minMax: 100, series: [
      { points: pts("p50_ms"), cls: "s-e" },
    ] });
    const latest = h.length ? h[h.length - 1] : null;
    if (latest) {
      const peak = (key) => Math.max(0, ...h.map((row) => row[key] || 0));
      document.querySelector("#chart-queue svg").setAttribute("aria-label",
        `Queue depth over the last ${minutes}: ${latest.visible} now, peak ${peak("visible")}.`);
      document.querySelector("#chart-workers svg").setAttribute("aria-label",
        `Workers over the last ${minutes}: ${latest.workers} now, peak ${peak("workers")}.`);
      document.querySelector("#chart-rate svg").setAttribute("aria-label",
        `Throughput over the last ${minutes}: ${fmtRate(latest.answered_per_s)} photos per ` +
        `second now, peak ${fmtRate(peak("answered_per_s"))}.`);
      const ms = fmtMs(latest.p50_ms);
      document.querySelector("#chart-latency svg").setAttribute("aria-label",
        `Median latency over the last ${minutes}: ${ms.value}${ms.unit} now.`);
    }
  }

  renderProblems(scaling) {
    const box = $("scaling-problems");
    const problems = scaling.problems || [];
    box.hidden = !problems.length;
    box.textContent = problems.length ? `Held back: ${problems.slice(0, 3).join("; ")}` : "";
  }

  renderDecisions(scaling) {
    this.renderProblems(scaling);
    const list = $("decisions");
    const recent = [...(scaling.decisions || [])].sort((a, b) => b.time - a.time).slice(0, 6);
    if (!recent.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = scaling.mode === "autoscale"
        ? "No scaling decisions yet. Upload photos to see the fleet grow."
        : "Autoscaling is off: the fleet has a fixed size.";
      list.replaceChildren(empty);
      return;
    }
    list.replaceChildren(...recent.map((d) => {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = new Date(d.time * 1000).toISOString();
      time.textContent = fmtClock(d.time);
      const action = document.createElement("span");
      const drained = (d.drain || []).length;
      const parts = [];
      if (d.launch) parts.push(`+${d.launch} started`);
      if (drained) parts.push(`−${drained} stopped`);
      action.className = `action ${d.launch ? "up" : drained ? "down" : ""}`;
      action.textContent = parts.join(", ") || "no change";
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = d.reason || "";
      item.append(time, action, reason);
      const inputs = describeInputs(d.inputs);
      if (inputs) {
        const used = document.createElement("span");
        used.className = "inputs";
        used.textContent = inputs;
        item.append(used);
      }
      return item;
    }));
  }

  renderWorkers(workers, now) {
    const rows = (workers.list || []).map((w) => {
      const tr = document.createElement("tr");
      const cells = [w.id, STATE_TEXT[w.state] || w.state, String(w.processed),
        fmtAge(now - w.launched_at)];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i >= 2) td.className = "num";
        if (i === 1) td.dataset.state = w.state;
        tr.append(td);
      });
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.innerHTML = '<td colspan="4" class="empty">No workers running.</td>';
      rows.push(tr);
    }
    $("worker-rows").replaceChildren(...rows);
  }

  /** Tell screen-reader users when the fleet changes size, at most every few seconds. */
  speak(workers) {
    if (this.spokenWorkers === null) {
      this.spokenWorkers = workers.total;
      return;
    }
    if (workers.total === this.spokenWorkers || this.speakTimer) return;
    this.speakTimer = setTimeout(() => {
      this.speakTimer = null;
      if (!this.last) return;
      const now = this.last.workers;
      if (now.total === this.spokenWorkers) return;
      this.spokenWorkers = now.total;
      $("live-announcer").textContent =
        `Fleet now has ${plural(now.total, "worker")}, ${now.by_state.busy || 0} busy.`;
    }, 3000);
  }
}

// What the policy based a decision on, in words: "arrivals 12.3/s, 5.1/s per worker, ...".
function describeInputs(inputs) {
  if (!inputs) return "";
  if (inputs.mode === "cold") {
    return `backlog ${inputs.backlog}, rates not measured yet: one worker per 10 queued`;
  }
  const parts = [`backlog ${inputs.backlog}`];
  const num = (v, digits = 1) => (v === null || v === undefined ? null : v.toFixed(digits));
  if (num(inputs.arrival_rate) !== null) parts.push(`arrivals ${num(inputs.arrival_rate)}/s`);
  if (num(inputs.rate_per_worker) !== null) {
    parts.push(`${num(inputs.rate_per_worker)}/s per worker`);
  }
  if (num(inputs.boot_s) !== null) parts.push(`boot ${num(inputs.boot_s)} s`);
  if (num(inputs.deadline_s) !== null) parts.push(`target ${num(inputs.deadline_s)} s`);
  parts.push(`wants ${inputs.target_workers}`);
  return parts.join(" · ");
}
