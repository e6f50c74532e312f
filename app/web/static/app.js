// Slipway's web chat: conversations through the public API (/v1/models, /api/sessions) and answers
// streamed over the session WebSocket. The WebSocket rather than SSE because one socket carries many
// turns and the Stop button is a frame on it ({"type": "cancel"}): the server stops generating at once
// and stores the partial answer marked incomplete, which it then reports in its `done` frame.
// Model text is only ever rendered by markdown.js, which builds DOM nodes and never parses HTML.

import { render } from "./markdown.js";

const KEY_STORE = "slipway.apiKey"; // sessionStorage: the key lives as long as this tab
const $ = (id) => document.getElementById(id);
const ui = {
  sessions: $("sessions"), more: $("more-sessions"), newChat: $("new-chat"), model: $("model"),
  title: $("session-title"), messages: $("messages"), form: $("composer"), input: $("input"),
  send: $("send"), stop: $("stop"), notice: $("notice"), sidebar: $("sidebar"),
  toggle: $("toggle-sidebar"), changeKey: $("change-key"), dialog: $("key-dialog"),
  keyForm: $("key-form"), keyInput: $("key-input"), keyError: $("key-error"),
};

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  session: null, // {id, model, title}
  socket: null, // {ws, ready: Promise, sessionId}
  turn: null, // the answer being streamed: {bubble, text}
  lastId: null,
};

class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

// -- API key -----------------------------------------------------------------------------------

let keyPrompt = null;
function askForKey(message) {
  if (!keyPrompt) {
    keyPrompt = new Promise((resolve) => {
      ui.keyError.hidden = !message;
      ui.keyError.textContent = message || "";
      ui.keyInput.value = "";
      ui.dialog.showModal();
      ui.keyForm.onsubmit = () => {
        const key = ui.keyInput.value.trim();
        if (!key) return;
        state.key = key;
        sessionStorage.setItem(KEY_STORE, key);
        ui.changeKey.hidden = false;
        keyPrompt = null;
        resolve(key);
      };
    });
  }
  return keyPrompt;
}

// A 401 asks for a key (again, saying why, when the one given was refused) and retries.
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    ...options,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    const body = await response.json().catch(() => null);
    const refused = state.key ? "That key was refused: " + new ApiError(401, body).message : "";
    await askForKey(refused);
    return api(path, options);
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// -- notices -----------------------------------------------------------------------------------

function notify(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

// -- models and sessions -----------------------------------------------------------------------

async function loadModels() {
  const { data } = await api("/v1/models");
  ui.model.replaceChildren(
    ...data.map((m) => {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.slipway && m.slipway.state !== "ready" ? `${m.id} (${m.slipway.state})` : m.id;
      return option;
    }),
  );
}

async function loadSessions(more = false) {
  const query = more && state.lastId ? `?limit=20&after=${encodeURIComponent(state.lastId)}` : "?limit=20";
  const page = await api(`/api/sessions${query}`);
  if (!more) ui.sessions.replaceChildren();
  page.data.forEach((s) => ui.sessions.append(sessionItem(s)));
  state.lastId = page.last_id;
  ui.more.hidden = !page.has_more;
  markCurrent();
}

function sessionItem(session) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "session";
  button.dataset.id = session.id;
  button.textContent = session.title || "Untitled";
  button.title = `${session.model || "default model"} · ${new Date(session.updated_at).toLocaleString()}`;
  button.addEventListener("click", () => openSession(session.id));
  li.append(button);
  return li;
}

function markCurrent() {
  for (const button of ui.sessions.querySelectorAll("button.session")) {
    button.classList.toggle("current", state.session !== null && button.dataset.id === state.session.id);
  }
}

async function openSession(id) {
  if (state.turn) return; // finish or stop the answer first
  closeSocket();
  const session = await api(`/api/sessions/${encodeURIComponent(id)}`);
  state.session = { id: session.id, model: session.model, title: session.title };
  ui.title.textContent = session.title || "";
  if (session.model) ui.model.value = session.model;
  ui.model.disabled = true; // a conversation keeps its model
  ui.messages.replaceChildren(...session.messages.map((m) => bubble(m.role, m.content, m)));
  scrollDown();
  markCurrent();
  ui.sidebar.classList.remove("open");
  ui.input.focus();
}

function newChat() {
  if (state.turn) return;
  closeSocket();
  state.session = null;
  ui.title.textContent = "";
  ui.model.disabled = false;
  ui.messages.replaceChildren();
  markCurrent();
  ui.sidebar.classList.remove("open");
  notify("");
  ui.input.focus();
}

// -- messages ----------------------------------------------------------------------------------

function bubble(role, text, message = {}) {
  const article = document.createElement("article");
  article.className = `message ${role}`;
  const content = document.createElement("div");
  content.className = "content";
  content.append(render(text));
  article.append(content);
  if (message.id) article.dataset.id = message.id;
  if (role === "assistant") setMeta(article, message);
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
  if (message.status === "incomplete") parts.push(message.error === "cancelled" ? "stopped" : "incomplete");
  if (message.model) parts.push(message.model);
  if (message.usage) parts.push(`${message.usage.completion_tokens} tokens`);
  if (message.latency_ms != null) parts.push(`${(message.latency_ms / 1000).toFixed(1)} s`);
  meta.textContent = parts.join(" · ");
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
      if (state.key) ws.send(JSON.stringify({ type: "auth", key: state.key }));
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
    turn.bubble.dataset.id = frame.message_id;
    setMeta(turn.bubble, {
      status: frame.status, model: frame.model, usage: frame.usage, latency_ms: frame.latency_ms,
      error: frame.status === "incomplete" ? "cancelled" : null,
    });
    endTurn();
  } else if (frame.type === "error") {
    const message = frame.message || (frame.error && frame.error.message) || "Something went wrong.";
    notify(message);
    if (turn) {
      setMeta(turn.bubble, { status: "incomplete", error: frame.code || "error" });
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
  ui.input.disabled = on;
  ui.newChat.disabled = on;
}

function endTurn() {
  state.turn = null;
  setStreaming(false);
  ui.input.focus();
}

async function send(text) {
  notify("");
  if (!state.session) {
    const session = await api("/api/sessions", {
      method: "POST", body: { model: ui.model.value || null, title: text.slice(0, 60) },
    });
    state.session = { id: session.id, model: session.model, title: session.title };
    ui.title.textContent = session.title || "";
    ui.model.disabled = true;
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
ui.newChat.addEventListener("click", newChat);
ui.more.addEventListener("click", () => loadSessions(true).catch((e) => notify(e.message)));
ui.toggle.addEventListener("click", () => ui.sidebar.classList.toggle("open"));
// On a phone the conversation list slides over the chat; a tap beside it closes it.
document.querySelector(".chat").addEventListener("click", (event) => {
  if (ui.sidebar.classList.contains("open") && !ui.toggle.contains(event.target)) ui.sidebar.classList.remove("open");
});
ui.changeKey.addEventListener("click", async () => {
  await askForKey("");
  closeSocket();
  await start();
});
ui.changeKey.hidden = !state.key;

async function start() {
  try {
    await loadModels();
    await loadSessions();
  } catch (error) {
    notify(error.message);
  }
}

start();
