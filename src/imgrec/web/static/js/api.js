// Talking to the service: the optional API key, fetch with a timeout, and error sentences.

const KEY_STORAGE = "imgrec.apiKey";
// Used when sessionStorage is unavailable (some private modes): lasts until reload.
let memoryKey = "";

export function getApiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || memoryKey;
  } catch {
    return memoryKey;
  }
}

export function setApiKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // No storage: memoryKey below still carries the key.
  }
  memoryKey = value;
}

function authHeaders() {
  const key = getApiKey();
  return key ? { "X-API-Key": key } : {};
}

/** An error that carries the service's code, HTTP status and a sentence for people. */
export class ApiError extends Error {
  constructor(code, status, detail, extra = {}) {
    super(detail || code);
    this.code = code;
    this.status = status;
    this.detail = detail || "";
    this.extra = extra;
  }

  get retryable() {
    return RETRYABLE.has(this.code);
  }
}

const RETRYABLE = new Set(["too_many_requests", "backend_unavailable", "network", "timeout",
  "server_error"]);

/** fetch() with the API key header, a timeout, and errors turned into ApiError. */
export async function apiFetch(url, { method = "GET", body, timeoutMs = 30000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(url, {
      method, body, headers: { Accept: "application/json", ...authHeaders() },
      signal: controller.signal, cache: "no-store",
    });
  } catch (err) {
    const code = err && err.name === "AbortError" ? "timeout" : "network";
    throw new ApiError(code, 0, String(err && err.message ? err.message : err));
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const code = (data && data.error) || codeForStatus(response.status);
    const { error: _e, detail, ...extra } = data || {};
    const retryAfter = Number(response.headers.get("Retry-After"));
    if (retryAfter > 0) extra.retryAfterS = retryAfter;
    throw new ApiError(code, response.status, detail || "", extra);
  }
  return data;
}

function codeForStatus(status) {
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 413) return "file_too_large";
  if (status === 429) return "too_many_requests";
  if (status === 503) return "backend_unavailable";
  if (status === 504) return "timeout";
  return status >= 500 ? "server_error" : "http_error";
}

function megabytes(bytes) {
  const mb = bytes / (1024 * 1024);
  return `${mb >= 10 ? Math.round(mb) : mb.toFixed(1)} MB`;
}

/** A sentence a person understands for an error code from the service (or the network). */
export function friendlyError(err) {
  const code = err.code || "unknown";
  const limit = err.extra && err.extra.limit_bytes;
  switch (code) {
    case "not_an_image":
      return "This file isn't an image. Choose a photo (JPEG, PNG, WebP, GIF or BMP).";
    case "file_too_large":
      return limit
        ? `This file is too large: the limit is ${megabytes(limit)}. Try a smaller copy.`
        : "This file is too large to upload. Try a smaller copy.";
    case "empty_file":
      return "This file is empty (0 bytes), so there is nothing to recognise.";
    case "corrupt_image":
      return "This image is damaged or incomplete and can't be read.";
    case "image_too_large":
      return "This image has too many pixels to process. Resize it and try again.";
    case "too_many_requests":
      return "The service is busy with your other photos. Try again in a moment.";
    case "backend_unavailable":
    case "insufficient_storage":
      return "The service is temporarily unavailable. Try again shortly.";
    case "timeout":
      return "The service took too long to answer. Try again.";
    case "network":
      return "Couldn't reach the service. Check your connection and try again.";
    case "unauthorized":
    case "invalid_api_key":
    case "missing_api_key":
      return "The service needs an API key. Enter it under “API key” at the top of the page.";
    case "job_not_found":
      return "The service lost track of this photo (was it restarted?). Try again.";
    case "missing_file":
    case "too_many_files":
    case "malformed_form":
      return "The photo couldn't be sent properly. Try again.";
    default:
      return err.detail || "Something went wrong with this photo. Try again.";
  }
}
