// The page's side of the public API, shared by the chat page and the playground: the API key (asked
// for in the page's #key-dialog when the server says 401, kept in this tab's sessionStorage only) and
// JSON calls that carry it.

const KEY_STORE = "slipway.apiKey"; // sessionStorage: the key lives as long as this tab
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem(KEY_STORE);
const keyListeners = [];

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

export function currentKey() {
  return key;
}

export function onKey(listener) {
  keyListeners.push(listener);
}

let keyPrompt = null;
export function askForKey(message) {
  if (!keyPrompt) {
    keyPrompt = new Promise((resolve) => {
      $("key-error").hidden = !message;
      $("key-error").textContent = message || "";
      $("key-input").value = "";
      $("key-dialog").showModal();
      $("key-form").onsubmit = () => {
        const given = $("key-input").value.trim();
        if (!given) return;
        key = given;
        sessionStorage.setItem(KEY_STORE, key);
        keyPrompt = null;
        keyListeners.forEach((listener) => listener(key));
        resolve(key);
      };
    });
  }
  return keyPrompt;
}

export function authHeaders(extra = {}) {
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

// A 401 asks for a key (again, saying why, when the one given was refused) and retries.
export async function fetchWithKey(path, options = {}) {
  const headers = authHeaders(options.headers || {});
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    ...options,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    const body = await response.json().catch(() => null);
    const refused = key ? "That key was refused: " + new ApiError(401, body).message : "";
    await askForKey(refused);
    return fetchWithKey(path, options);
  }
  return response;
}

export async function api(path, options = {}) {
  const response = await fetchWithKey(path, options);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}
