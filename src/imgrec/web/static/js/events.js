// Server-sent events read with fetch (EventSource cannot send the X-API-Key header).

import { getApiKey } from "./api.js";

/** Read the text/event-stream at url; onEvent(name, data) for each event; resolves at its end. */
export async function streamEvents(url, onEvent, signal) {
  const key = getApiKey();
  const response = await fetch(url, {
    headers: { Accept: "text/event-stream", ...(key ? { "X-API-Key": key } : {}) },
    signal, cache: "no-store",
  });
  if (!response.ok || !response.body) {
    const err = new Error(`event stream: HTTP ${response.status}`);
    err.status = response.status;
    throw err;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
