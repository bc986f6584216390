// Wires the page together: the drop zone and file picker, the photo list, CSV, the API key,
// the live panel and the screen-reader announcer.

import { getApiKey, setApiKey } from "./api.js";
import { download, toCsv } from "./csv.js";
import { LivePanel } from "./live.js";
import { UploadList } from "./uploads.js";

const $ = (id) => document.getElementById(id);

/** Polite announcements, merged when many arrive at once (e.g. 50 photos classified). */
function makeAnnouncer(node) {
  let pending = [];
  let timer = null;
  return (text) => {
    pending.push(text);
    if (timer) return;
    timer = setTimeout(() => {
      node.textContent = pending.length > 3
        ? `${pending.length} photos updated. ${pending[pending.length - 1]}`
        : pending.join(" ");
      pending = [];
      timer = null;
    }, 700);
  };
}

function summaryText(c) {
  const parts = [`${c.total} ${c.total === 1 ? "photo" : "photos"}`];
  if (c.classified) parts.push(`${c.classified} classified`);
  const inProgress = c.waiting + c.uploading + c.queued;
  if (inProgress) parts.push(`${inProgress} in progress`);
  if (c.failed) parts.push(`${c.failed} failed`);
  return parts.join(" · ");
}

function stamp() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-` +
    `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
}

function setUpDropzone(zone, input, onFiles) {
  $("pick").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    if (input.files && input.files.length) onFiles([...input.files]);
    input.value = ""; // choosing the same file again must fire "change" again
  });
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  zone.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    zone.classList.add("over");
  });
  zone.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("over");
    const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
    if (files.length) onFiles(files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length) {
      e.preventDefault();
      onFiles(files);
    }
  });
}

function setUpApiKey() {
  const input = $("api-key");
  input.value = getApiKey();
  if (input.value) $("settings").open = false;
  // A 401 on an upload opens the key form, so the person sees where the key goes.
  document.addEventListener("imgrec:needs-key", () => {
    if ($("settings").open) return;
    $("settings").open = true;
    input.focus();
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    $("key-saved").textContent = input.value.trim()
      ? "Saved for this tab." : "Key removed.";
  });
}

function main() {
  const announce = makeAnnouncer($("announcer"));
  const toolbar = $("toolbar");
  const list = new UploadList({
    listEl: $("results"),
    announce,
    onChange: () => {
      const c = list.counts();
      toolbar.hidden = c.total === 0;
      $("summary").textContent = summaryText(c);
      $("download").disabled = c.classified === 0;
    },
  });
  setUpDropzone($("dropzone"), $("file-input"), (files) => {
    list.add(files);
    announce(`Uploading ${files.length} ${files.length === 1 ? "photo" : "photos"}.`);
  });
  $("download").addEventListener("click", () => {
    download(`imgrec-results-${stamp()}.csv`, toCsv(list.rows()));
  });
  $("clear").addEventListener("click", () => {
    list.clear();
    $("pick").focus();
    announce("List cleared.");
  });
  setUpApiKey();
  new LivePanel($("live")).start();
}

main();
