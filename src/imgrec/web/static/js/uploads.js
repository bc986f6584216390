// The upload list: each photo goes waiting -> uploading -> queued -> classified | failed.
// Photos are queued as jobs (POST /api/v1/jobs) a few at a time; one server-sent event stream
// (GET /api/v1/job-events) brings every queued photo's answer, so a hundred files upload
// quickly, each shows its own state, and nothing polls.

import { ApiError, apiFetch, friendlyError } from "./api.js";
import { streamEvents } from "./events.js";

const UPLOAD_CONCURRENCY = 4;
const MAX_STREAM_IDS = 150; // the ids go in the URL
const MAX_ATTEMPTS = 6;
const STATUS_TEXT = {
  waiting: "Waiting",
  uploading: "Uploading",
  queued: "Queued",
  classified: "Classified",
  failed: "Failed",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
function percent(p) {
  if (p > 0 && p < 0.001) return "<0.1%";
  return `${(p * 100).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1)}%`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  node.append(...children.filter(Boolean));
  return node;
}

function seconds(ms) {
  return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export class UploadList {
  /**
   * listEl: the <ol> the cards go in. announce(text): tell screen-reader users.
   * onChange(): called after any photo changes state.
   */
  constructor({ listEl, announce, onChange }) {
    this.listEl = listEl;
    this.announce = announce;
    this.onChange = onChange;
    this.items = [];
    this.waiting = [];
    this.uploading = 0;
    this.nextId = 1;
    this.stream = null;
  }

  add(files) {
    for (const file of files) {
      const item = {
        id: this.nextId++, file, name: file.name || "pasted image", status: "waiting",
        jobId: null, result: null, error: null, attempts: 0, startedAt: 0, doneAt: 0,
      };
      item.card = this.buildCard(item);
      this.items.push(item);
      this.waiting.push(item);
      this.listEl.append(item.card.root);
      this.render(item);
    }
    this.onChange();
    this.pump();
  }

  clear() {
    if (this.stream) this.stream.abort();
    for (const item of this.items) {
      item.cancelled = true;
      if (item.thumbUrl) URL.revokeObjectURL(item.thumbUrl);
    }
    this.items = [];
    this.waiting = [];
    this.listEl.replaceChildren();
    this.onChange();
  }

  counts() {
    const counts = { total: this.items.length, waiting: 0, uploading: 0, queued: 0,
      classified: 0, failed: 0 };
    for (const item of this.items) counts[item.status] += 1;
    return counts;
  }

  /** Rows for the CSV download: classified photos in the order they were added. */
  rows() {
    return this.items
      .filter((item) => item.status === "classified")
      .map((item) => ({
        file: item.name, label: item.result.label, class_index: item.result.class_index,
        probability: item.result.probability.toFixed(6),
      }));
  }

  // --- uploading -------------------------------------------------------------------------

  pump() {
    while (this.uploading < UPLOAD_CONCURRENCY && this.waiting.length) {
      const item = this.waiting.shift();
      if (item.cancelled) continue;
      this.uploading += 1;
      this.upload(item).finally(() => {
        this.uploading -= 1;
        this.pump();
      });
    }
  }

  async upload(item) {
    this.setStatus(item, "uploading");
    if (!item.startedAt) item.startedAt = performance.now();
    const form = new FormData();
    form.append("file", item.file, item.name);
    for (;;) {
      item.attempts += 1;
      try {
        const accepted = await apiFetch("/api/v1/jobs", { method: "POST", body: form });
        if (item.cancelled) return;
        item.jobId = accepted.id;
        item.queuedAt = performance.now();
        this.setStatus(item, "queued");
        this.startPolling();
        return;
      } catch (err) {
        if (item.cancelled) return;
        if (err instanceof ApiError && err.retryable && item.attempts < MAX_ATTEMPTS) {
          const waitS = err.extra.retryAfterS || Math.min(8, 0.5 * 2 ** item.attempts);
          await sleep(waitS * 1000);
          continue;
        }
        this.fail(item, err);
        return;
      }
    }
  }

  retry(item) {
    item.attempts = 0;
    item.error = null;
    item.jobId = null;
    item.startedAt = 0;
    this.setStatus(item, "waiting");
    this.waiting.push(item);
    this.pump();
  }

  // --- live job states ---------------------------------------------------------------

  // One stream for all queued photos: reopened (debounced) when more are queued, so the
  // browser's few connections per host stay free for uploads.
  startPolling() {
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => this.openStream(), 150);
  }

  async openStream() {
    if (this.stream) this.stream.abort();
    const queued = this.items.filter((item) => item.status === "queued" && item.jobId);
    if (!queued.length) return;
    const controller = new AbortController();
    this.stream = controller;
    const byJob = new Map(queued.slice(0, MAX_STREAM_IDS).map((item) => [item.jobId, item]));
    const query = [...byJob.keys()].map((id) => `id=${encodeURIComponent(id)}`).join("&");
    const ticker = setInterval(() => {
      for (const item of byJob.values()) if (item.status === "queued") this.renderPending(item);
    }, 1000);
    try {
      await streamEvents(`/api/v1/job-events?${query}`, (name, job) => {
        const item = byJob.get(job.id);
        if (name === "state" && item) this.applyJob(item, job);
      }, controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err.status === 401) document.dispatchEvent(new CustomEvent("imgrec:needs-key"));
      // A passing network blip (or a key to enter): the photos are safely queued, reconnect.
      await sleep(err.status === 401 ? 3000 : 1000);
    } finally {
      clearInterval(ticker);
      if (this.stream === controller) this.stream = null;
    }
    if (!controller.signal.aborted && this.items.some((item) => item.status === "queued")) {
      this.startPolling();
    }
  }

  applyJob(item, job) {
    if (item.cancelled || item.status !== "queued") return;
    if (job.status === "done" && job.result) {
      item.result = job.result;
      item.doneAt = performance.now();
      this.setStatus(item, "classified");
      const top = job.result;
      this.announce(`${item.name}: ${top.label}, ${percent(top.probability)}.`);
    } else if (job.status !== "queued") {  // failed, cancelled, deadline_exceeded: final
      this.fail(item, new ApiError(job.error || "classification_failed", 200, job.detail || ""));
    }
  }

  fail(item, err) {
    if (err.code === "unauthorized") document.dispatchEvent(new CustomEvent("imgrec:needs-key"));
    item.error = err;
    item.doneAt = performance.now();
    this.setStatus(item, "failed");
    this.announce(`${item.name}: failed. ${friendlyError(err)}`);
  }

  setStatus(item, status) {
    item.status = status;
    this.render(item);
    this.onChange();
  }

  // --- rendering -------------------------------------------------------------------------

  buildCard(item) {
    const img = el("img", { alt: "", decoding: "async" });
    const thumb = el("div", { class: "thumb" }, img);
    if (!item.file.type || item.file.type.startsWith("image/")) {
      item.thumbUrl = URL.createObjectURL(item.file);
      img.src = item.thumbUrl;
      img.addEventListener("error", () => thumb.classList.add("no-preview"));
    } else {
      thumb.classList.add("no-preview");
    }
    const name = el("h3", { class: "fname", text: item.name, title: item.name });
    const badge = el("span", { class: "badge" });
    const body = el("div", { class: "outcome" });
    const root = el("li", { class: "card", "data-file": item.name },
      thumb, el("div", { class: "card-body" }, el("div", { class: "card-head" }, name, badge), body));
    return { root, badge, body };
  }

  render(item) {
    const { root, badge, body } = item.card;
    root.dataset.status = item.status;
    badge.textContent = STATUS_TEXT[item.status];
    if (item.status === "classified") body.replaceChildren(...this.resultNodes(item));
    else if (item.status === "failed") body.replaceChildren(...this.errorNodes(item));
    else this.renderPending(item);
  }

  renderPending(item) {
    let text = "Waiting to upload…";
    if (item.status === "uploading") text = "Uploading…";
    if (item.status === "queued") {
      const waited = performance.now() - item.queuedAt;
      text = waited > 2000 ? `In the queue for ${seconds(waited)}…` : "In the queue…";
    }
    const { body } = item.card;
    let note = body.querySelector(".pending-text");
    if (!note) {
      note = el("p", { class: "pending-text" });
      body.replaceChildren(note, el("div", { class: "progress", "aria-hidden": "true" }));
    }
    note.textContent = text;
  }

  resultNodes(item) {
    const r = item.result;
    const top1 = el("p", { class: "top1" },
      el("span", { class: "label", text: r.label }),
      el("span", { class: "pct", text: percent(r.probability) }));
    const rows = r.top5.map((p, i) => {
      const bar = el("span", { class: "bar", "aria-hidden": "true" }, el("span"));
      bar.firstChild.style.width = `${Math.max(0.5, p.probability * 100)}%`;
      return el("li", { class: i === 0 ? "first" : "" },
        el("span", { class: "t-label", text: p.label }),
        el("span", { class: "t-pct", text: percent(p.probability) }), bar);
    });
    const list = el("ol", { class: "top5", "aria-label": `Top ${rows.length} guesses` }, ...rows);
    const took = item.startedAt ? seconds(item.doneAt - item.startedAt) : "";
    const meta = el("p", { class: "meta", text: took ? `${r.model} · ${took}` : r.model });
    return [top1, list, meta];
  }

  errorNodes(item) {
    const nodes = [el("p", { class: "error-text", text: friendlyError(item.error) })];
    const again = ["job_not_found", "unauthorized"];
    if (item.error && (item.error.retryable || again.includes(item.error.code))) {
      const button = el("button", { type: "button", class: "btn small", text: "Try again" });
      button.addEventListener("click", () => this.retry(item));
      nodes.push(button);
    }
    return nodes;
  }
}
