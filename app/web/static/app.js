// Slipway's web chat: conversations through the public API (/v1/models, /api/sessions) and answers
// streamed over the session WebSocket. The WebSocket rather than SSE because one socket carries many
// turns and the Stop button is a frame on it ({"type": "cancel"}): the server stops generating at once
// and stores the partial answer marked incomplete, which it then reports in its `done` frame.
// Model text is only ever rendered by markdown.js, which builds DOM nodes and never parses HTML.

import { api, askForKey, currentKey, onKey } from "./api.js";
import { render } from "./markdown.js";
import { openOnClick, sessionItem, sessionItems } from "./sessions.js";

const $ = (id) => document.getElementById(id);
const ui = {
  sessions: $("sessions"), more: $("more-sessions"), newChat: $("new-chat"), model: $("model"),
  title: $("session-title"), messages: $("messages"), form: $("composer"), input: $("input"),
  send: $("send"), stop: $("stop"), regenerate: $("regenerate"),
  temperatureInput: $("temperature-input"), maxTokensInput: $("max-tokens-input"), notice: $("notice"), sidebar: $("sidebar"),
  toggle: $("toggle-sidebar"), changeKey: $("change-key"),
  search: $("search"), noSessions: $("no-sessions"), closeSidebar: $("close-sidebar"), backdrop: $("backdrop"),
  rename: $("rename"), del: $("delete"), welcome: $("welcome"), modelList: $("model-list"),
  renameDialog: $("rename-dialog"), renameForm: $("rename-form"), renameInput: $("rename-input"),
  renameCancel: $("rename-cancel"), systemInput: $("system-input"), deleteDialog: $("delete-dialog"), deleteForm: $("delete-form"),
  deleteCancel: $("delete-cancel"),
};

const state = {
  session: null, // {id, model, title}
  socket: null, // {ws, ready: Promise, sessionId}
  turn: null, // the answer being streamed: {bubble, text}
  lastId: null,
  search: "",
};
const textOf = new WeakMap(); // message element -> its raw text (what Copy copies)

// A conversation's title as plain words: the first message without Markdown's marks.
export function plainTitle(text) {
  return text
    .replace(/```[\s\S]*?```/g, " ")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+/gm, "")
    .replace(/(\*\*|__|~~|`)/g, "")
    .replace(/(^|\W)[*_](\S(?:.*?\S)?)[*_](?=\W|$)/g, "$1$2")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 60);
}

// -- notices -----------------------------------------------------------------------------------

function notify(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

// -- models and sessions -----------------------------------------------------------------------

async function loadModels() {
  const { data } = await api("/v1/models");
  const chat = data.filter((m) => !(m.slipway && m.slipway.kind === "embedding"));
  ui.model.replaceChildren(
    ...chat.map((m) => {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.slipway && m.slipway.state !== "ready" ? `${m.id} (${m.slipway.state})` : m.id;
      return option;
    }),
  );
  ui.modelList.replaceChildren(
    ...chat.map((m) => {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = m.id;
      const about = document.createElement("span");
      const info = m.slipway || {};
      about.textContent = ` ${info.description || `served by ${info.provider || m.owned_by}`}`;
      li.append(name, about);
      return li;
    }),
  );
}

async function loadSessions(more = false) {
  const params = new URLSearchParams({ limit: "20" });
  if (more && state.lastId) params.set("after", state.lastId);
  if (state.search) params.set("q", state.search);
  const page = await api(`/api/sessions?${params}`);
  if (!more) ui.sessions.replaceChildren();
  ui.sessions.append(sessionItems(page.data));
  state.lastId = page.last_id;
  ui.more.hidden = !page.has_more;
  const none = !more && page.data.length === 0;
  ui.noSessions.hidden = !none;
  ui.noSessions.textContent = state.search ? `No conversation mentions “${state.search}”.` : "No conversations yet.";
  markCurrent();
}

// -- the address: one per conversation (#/c/<id>), so reload, back and forward work --------------

function go(id) {
  const target = id ? `#/c/${encodeURIComponent(id)}` : "#/";
  if (location.hash !== target) history.pushState(null, "", target);
  return route();
}

function routeId() {
  const match = /^#\/c\/([^/]+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

async function route() {
  const id = routeId();
  if (state.turn && id !== (state.session && state.session.id)) {
    // The answer streaming now belongs to the open conversation: stay on it until it ends.
    history.replaceState(null, "", state.session ? `#/c/${encodeURIComponent(state.session.id)}` : "#/");
    notify("An answer is still coming in this conversation: stop it (Esc) or wait, then switch.");
    return;
  }
  if (id) await openSession(id);
  else newChat();
}

function showHeader() {
  const open = state.session !== null;
  ui.title.textContent = open ? state.session.title || "Untitled" : "";
  ui.rename.hidden = !open;
  ui.del.hidden = !open;
  ui.welcome.hidden = open;
  document.title = open && state.session.title ? `${state.session.title} · Slipway` : "Slipway chat";
}

function markCurrent() {
  for (const button of ui.sessions.querySelectorAll("button.session")) {
    button.classList.toggle("current", state.session !== null && button.dataset.id === state.session.id);
  }
}

async function openSession(id) {
  closeSocket();
  let session;
  try {
    session = await api(`/api/sessions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status !== 404) throw error;
    history.replaceState(null, "", "#/");
    newChat();
    notify("That conversation does not exist (it was deleted, or belongs to another key).");
    return;
  }
  notify("");
  state.session = sessionState(session);
  showHeader();
  if (session.model) ui.model.value = session.model;
  ui.model.disabled = true; // a conversation keeps its model
  ui.messages.replaceChildren(...session.messages.map((m) => bubble(m.role, m.content, m)));
  showRegenerate();
  scrollDown();
  markCurrent();
  setSidebar(false);
  ui.input.focus();
}

// What the page keeps of a conversation (the API's session object).
function sessionState(session) {
  return {
    id: session.id, model: session.model, title: session.title, system: session.system_prompt,
    temperature: session.temperature, maxTokens: session.max_tokens,
  };
}

// Regenerate is offered when the conversation ends with an answer and nothing is streaming.
function showRegenerate() {
  const last = ui.messages.lastElementChild;
  ui.regenerate.hidden = !(state.session && !state.turn && last && last.classList.contains("assistant"));
}

function newChat() {
  closeSocket();
  state.session = null;
  showHeader();
  ui.regenerate.hidden = true;
  ui.model.disabled = false;
  ui.messages.replaceChildren();
  markCurrent();
  setSidebar(false);
  notify("");
  ui.input.focus();
}

function setSidebar(open) {
  ui.sidebar.classList.toggle("open", open);
  ui.backdrop.hidden = !open;
  ui.toggle.setAttribute("aria-expanded", String(open));
  if (open) ui.search.focus();
}

// -- rename and delete -------------------------------------------------------------------------

function renameSession() {
  if (!state.session) return;
  ui.renameInput.value = state.session.title || "";
  ui.systemInput.value = state.session.system || "";
  ui.temperatureInput.value = state.session.temperature ?? "";
  ui.maxTokensInput.value = state.session.maxTokens ?? "";
  ui.renameDialog.showModal();
  ui.renameInput.select();
}

async function submitRename() {
  const title = ui.renameInput.value.trim();
  if (!title || !state.session) return;
  const system = ui.systemInput.value.trim() || null;
  // Empty fields put the model entry's defaults back (null); the browser has checked the ranges.
  const temperature = ui.temperatureInput.value === "" ? null : Number(ui.temperatureInput.value);
  const maxTokens = ui.maxTokensInput.value === "" ? null : Number(ui.maxTokensInput.value);
  const session = await api(`/api/sessions/${encodeURIComponent(state.session.id)}`, {
    method: "PATCH", body: { title, system_prompt: system, temperature, max_tokens: maxTokens },
  });
  Object.assign(state.session, sessionState(session));
  showHeader();
  const item = ui.sessions.querySelector(`button.session[data-id="${CSS.escape(session.id)}"] .session-name`);
  if (item) item.textContent = session.title;
}

async function submitDelete() {
  if (!state.session) return;
  const id = state.session.id;
  await api(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  const item = ui.sessions.querySelector(`button.session[data-id="${CSS.escape(id)}"]`);
  if (item) item.parentElement.remove();
  ui.noSessions.hidden = ui.sessions.children.length > 0;
  ui.noSessions.textContent = "No conversations yet.";
  await go(null);
  notify("");
}

// -- messages ----------------------------------------------------------------------------------

function bubble(role, text, message = {}) {
  const article = document.createElement("article");
  article.className = `message ${role}`;
  const content = document.createElement("div");
  content.className = "content";
  content.append(render(text));
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", role === "user" ? "Copy your message" : "Copy the answer");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(textOf.get(article) || "");
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Copy failed";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  article.append(content, copy);
  textOf.set(article, text);
  if (message.id) article.dataset.id = message.id;
  if (role === "assistant") setMeta(article, message);
  else if (message.created_at) setMeta(article, message);
  return article;
}

function setMeta(article, message) {
  article.dataset.status = message.status || "";
  let meta = article.querySelector(".meta");
  if (!meta) {
    meta = document.createElement("div");
    meta.className = "meta";
    article.append(meta);
  }
  const parts = [];
  if (message.status === "incomplete") {
    const empty = !(textOf.get(article) || "").trim();
    if (message.error === "cancelled") parts.push(empty ? "stopped before any text" : "stopped");
    else if (message.error === "interrupted") parts.push("interrupted: the server handling it stopped");
    else parts.push(empty ? "failed before any text" : "incomplete");
  }
  if (message.model) parts.push(message.model);
  if (message.usage) parts.push(`${message.usage.completion_tokens} tokens`);
  if (message.latency_ms != null) parts.push(`${(message.latency_ms / 1000).toFixed(1)} s`);
  meta.replaceChildren(parts.join(" · "));
  if (message.created_at) {
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = new Date(message.created_at).toLocaleString();
    if (parts.length) meta.append(" · ");
    meta.append(time);
  }
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// -- the WebSocket -----------------------------------------------------------------------------

function closeSocket() {
  if (state.socket) {
    state.socket.ws.onclose = null;
    state.socket.ws.close();
    state.socket = null;
  }
}

function socketFor(sessionId) {
  if (state.socket && state.socket.sessionId === sessionId && state.socket.ws.readyState <= 1) {
    return state.socket.ready;
  }
  closeSocket();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/api/sessions/${encodeURIComponent(sessionId)}/ws`);
  const socket = { ws, sessionId };
  socket.ready = new Promise((resolve, reject) => {
    ws.onopen = () => {
      if (currentKey()) ws.send(JSON.stringify({ type: "auth", key: currentKey() }));
      else resolve(ws);
    };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "auth") return resolve(ws);
      onFrame(frame);
    };
    ws.onerror = () => reject(new Error("The connection to the server failed."));
    ws.onclose = (event) => {
      if (state.socket === socket) state.socket = null;
      reject(new Error("The connection closed."));
      onClose(event);
    };
  });
  state.socket = socket;
  return socket.ready;
}

function onFrame(frame) {
  const turn = state.turn;
  if (frame.type === "delta" && turn) {
    turn.text += frame.content;
    if (!turn.scheduled) {
      turn.scheduled = true;
      requestAnimationFrame(() => {
        turn.scheduled = false;
        turn.bubble.querySelector(".content").replaceChildren(render(turn.text));
        scrollDown();
      });
    }
  } else if (frame.type === "done" && turn) {
    turn.bubble.querySelector(".content").replaceChildren(render(turn.text));
    textOf.set(turn.bubble, turn.text);
    turn.bubble.dataset.id = frame.message_id;
    setMeta(turn.bubble, {
      status: frame.status, model: frame.model, usage: frame.usage, latency_ms: frame.latency_ms,
      error: frame.status === "incomplete" ? "cancelled" : null,
    });
    // A regeneration stopped before any text kept the previous answer: show it again.
    if (turn.regenerating && frame.replaced_message_id == null) turn.failed = true;
    endTurn();
  } else if (frame.type === "error") {
    const message = frame.message || (frame.error && frame.error.message) || "Something went wrong.";
    notify(message);
    if (turn) {
      setMeta(turn.bubble, { status: "incomplete", error: frame.code || "error" });
      turn.failed = frame.message_id == null; // nothing stored for this turn
      endTurn();
    }
  }
}

function onClose(event) {
  if (event.code === 4401) {
    askForKey("The server refused the key for the conversation.");
  } else if (event.code === 4404) {
    notify("This conversation no longer exists.");
  }
  if (state.turn) {
    setMeta(state.turn.bubble, { status: "incomplete", error: "disconnected" });
    endTurn();
    notify("The connection closed before the answer was complete.");
  }
}

// -- sending and stopping ----------------------------------------------------------------------

function setStreaming(on) {
  ui.send.hidden = on;
  ui.stop.hidden = !on;
  if (on) ui.regenerate.hidden = true;
  ui.input.disabled = on;
  ui.newChat.disabled = on;
}

function endTurn() {
  const turn = state.turn;
  state.turn = null;
  setStreaming(false);
  showRegenerate();
  ui.input.focus();
  // A regeneration that failed before storing anything left the previous answer in place: show it.
  if (turn && turn.regenerating && turn.failed && state.session) {
    const said = ui.notice.hidden ? "" : ui.notice.textContent;
    openSession(state.session.id)
      .then(() => { if (said) notify(`${said} The previous answer is kept.`); })
      .catch(() => {});
  }
}

async function send(text) {
  notify("");
  if (!state.session) {
    const session = await api("/api/sessions", {
      method: "POST", body: { model: ui.model.value || null, title: plainTitle(text) || null },
    });
    state.session = sessionState(session);
    history.pushState(null, "", `#/c/${encodeURIComponent(session.id)}`);
    showHeader();
    ui.model.disabled = true;
    ui.noSessions.hidden = true;
    ui.sessions.prepend(sessionItem(session));
    markCurrent();
  }
  ui.messages.append(bubble("user", text, { status: "complete" }));
  const answer = bubble("assistant", "", { status: "streaming" });
  ui.messages.append(answer);
  scrollDown();
  state.turn = { bubble: answer, text: "", scheduled: false };
  setStreaming(true);
  try {
    const ws = await socketFor(state.session.id);
    ws.send(JSON.stringify({ type: "message", content: text }));
  } catch (error) {
    notify(error.message);
    setMeta(answer, { status: "incomplete", error: "disconnected" });
    endTurn();
  }
}

// The last answer again: its bubble gives way to the new one, which the server stores in its place.
async function regenerate() {
  if (!state.session || state.turn) return;
  notify("");
  const last = ui.messages.lastElementChild;
  if (!last || !last.classList.contains("assistant")) return;
  const answer = bubble("assistant", "", { status: "streaming" });
  last.replaceWith(answer);
  scrollDown();
  state.turn = { bubble: answer, text: "", scheduled: false, regenerating: true };
  setStreaming(true);
  try {
    const ws = await socketFor(state.session.id);
    ws.send(JSON.stringify({ type: "regenerate" }));
  } catch (error) {
    notify(error.message);
    state.turn.failed = true;
    endTurn();
  }
}

function stop() {
  if (state.turn && state.socket) state.socket.ws.send(JSON.stringify({ type: "cancel" }));
}

// -- wiring ------------------------------------------------------------------------------------

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (!text.trim() || state.turn) return;
  ui.input.value = "";
  send(text).catch((error) => { notify(error.message); endTurn(); });
});
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.stop.addEventListener("click", stop);
openOnClick(ui.sessions, go);
ui.regenerate.addEventListener("click", () => { regenerate().catch((e) => notify(e.message)); });
ui.newChat.addEventListener("click", () => go(null));
ui.more.addEventListener("click", () => loadSessions(true).catch((e) => notify(e.message)));
// On a phone the conversation list slides over the chat, with a backdrop and a close button.
ui.toggle.addEventListener("click", () => setSidebar(!ui.sidebar.classList.contains("open")));
ui.closeSidebar.addEventListener("click", () => { setSidebar(false); ui.toggle.focus(); });
ui.backdrop.addEventListener("click", () => setSidebar(false));
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
  if (state.turn) stop();
  else if (ui.sidebar.classList.contains("open")) setSidebar(false);
});
let searchTimer = null;
ui.search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.search = ui.search.value.trim();
    loadSessions().catch((e) => notify(e.message));
  }, 200);
});
ui.rename.addEventListener("click", renameSession);
ui.renameCancel.addEventListener("click", () => ui.renameDialog.close());
ui.renameForm.addEventListener("submit", () => { submitRename().catch((e) => notify(e.message)); });
ui.del.addEventListener("click", () => ui.deleteDialog.showModal());
ui.deleteCancel.addEventListener("click", () => ui.deleteDialog.close());
ui.deleteForm.addEventListener("submit", () => { submitDelete().catch((e) => notify(e.message)); });
window.addEventListener("popstate", () => { route().catch((e) => notify(e.message)); });
ui.changeKey.addEventListener("click", async () => {
  await askForKey("");
  closeSocket();
  await start();
});
ui.changeKey.hidden = !currentKey();
onKey(() => { ui.changeKey.hidden = false; });

async function start() {
  try {
    await loadModels();
    await loadSessions();
    await route();
  } catch (error) {
    notify(error.message);
  }
}

start();
