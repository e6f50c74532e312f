// The chain playground: for each chain of GET /v1/chains a form built from its input schema, a model
// picker, invoke (POST /v1/chains/<name>/invoke) or stream (/stream, LangServe's server-sent events),
// the output with its time and tokens, and the same call as curl or Python to copy. Everything is
// rendered as DOM nodes and text; nothing the server or a model sends is parsed as HTML.

import { api, fetchWithKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("chain-form"), chain: $("chain"), about: $("chain-about"), inputs: $("inputs"), model: $("pg-model"),
  temperature: $("temperature"), maxTokens: $("max-tokens"), invoke: $("invoke"), stream: $("stream"),
  output: $("output"), stats: $("stats"), notice: $("notice"), snippetKind: $("snippet-kind"),
  snippet: $("snippet"), copySnippet: $("copy-snippet"),
};
const chains = new Map();

function notify(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

// -- the form, from the chain's input schema ---------------------------------------------------------

function widget(name, schema, required) {
  const id = `in-${name}`;
  const label = document.createElement("label");
  label.className = "field";
  label.htmlFor = id;
  label.textContent = schema.title || name;
  if (required) label.append(" (required)");
  let control;
  if (Array.isArray(schema.enum)) {
    control = document.createElement("select");
    control.append(...schema.enum.map((v) => option(v, v)));
  } else if (schema.type === "integer" || schema.type === "number") {
    control = document.createElement("input");
    control.type = "number";
    if (schema.minimum !== undefined) control.min = schema.minimum;
    if (schema.maximum !== undefined) control.max = schema.maximum;
    control.step = schema.type === "integer" ? "1" : "any";
  } else {
    control = document.createElement("textarea");
    control.rows = schema.type === "string" ? 3 : 4;
  }
  control.id = id;
  control.name = name;
  control.dataset.kind = ["string", "integer", "number"].includes(schema.type) || schema.enum ? schema.type : "json";
  if (control.dataset.kind === "json") control.placeholder = JSON.stringify(schema.default ?? (schema.type === "array" ? [] : {}));
  if (schema.default !== undefined && control.dataset.kind !== "json") control.value = schema.default;
  if (required) control.required = true;
  const parts = [label, control];
  if (schema.description) {
    const hint = document.createElement("span");
    hint.className = "muted hint";
    hint.id = `${id}-hint`;
    hint.textContent = schema.description;
    control.setAttribute("aria-describedby", hint.id);
    parts.push(hint);
  }
  return parts;
}

function buildForm() {
  const chain = chains.get(ui.chain.value);
  ui.about.textContent = chain.description || "";
  const schema = chain.input_schema;
  const required = new Set(schema.required || []);
  const legend = document.createElement("legend");
  legend.textContent = "Input";
  ui.inputs.replaceChildren(legend);
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    ui.inputs.append(...widget(name, prop, required.has(name)));
  }
  ui.output.textContent = "";
  ui.stats.textContent = "";
  showSnippet();
}

function readInput() {
  const input = {};
  for (const control of ui.inputs.querySelectorAll("[name]")) {
    const raw = control.value;
    if (raw === "" && !control.required) continue;
    const kind = control.dataset.kind;
    if (kind === "integer" || kind === "number") input[control.name] = Number(raw);
    else if (kind === "json") {
      try {
        input[control.name] = JSON.parse(raw || control.placeholder);
      } catch {
        throw new Error(`${control.name}: not valid JSON`);
      }
    } else input[control.name] = raw;
  }
  return input;
}

function requestBody() {
  const body = { input: readInput(), model: ui.model.value || null, params: {} };
  if (ui.temperature.value !== "") body.params.temperature = Number(ui.temperature.value);
  if (ui.maxTokens.value !== "") body.params.max_tokens = Number(ui.maxTokens.value);
  return body;
}

// -- running ---------------------------------------------------------------------------------------

function busy(on) {
  ui.invoke.disabled = on;
  ui.stream.disabled = on;
}

async function invoke() {
  const body = requestBody();
  busy(true);
  notify("");
  ui.output.textContent = "";
  const started = performance.now();
  try {
    const result = await api(`/v1/chains/${encodeURIComponent(ui.chain.value)}/invoke`, { method: "POST", body });
    const ms = performance.now() - started;
    ui.output.textContent = typeof result.output === "string" ? result.output : JSON.stringify(result.output, null, 2);
    const usage = result.usage || {};
    ui.stats.textContent = `${result.model} · ${(ms / 1000).toFixed(2)} s · ${usage.prompt_tokens ?? "?"} prompt + ${usage.completion_tokens ?? "?"} completion tokens`;
  } finally {
    busy(false);
  }
}

async function stream() {
  const body = requestBody();
  busy(true);
  notify("");
  ui.output.textContent = "";
  const started = performance.now();
  let first = null;
  let pieces = 0;
  try {
    const response = await fetchWithKey(`/v1/chains/${encodeURIComponent(ui.chain.value)}/stream`, {
      method: "POST", body, headers: { Accept: "text/event-stream" },
    });
    if (!response.ok) {
      const error = await response.json().catch(() => null);
      throw new Error((error && error.error && error.error.message) || `HTTP ${response.status}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = "message";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut).replace(/\r$/, "");
        buffer = buffer.slice(cut + 1);
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) {
          const data = JSON.parse(line.slice(5).trim());
          if (event === "data") {
            first ??= performance.now();
            pieces += 1;
            ui.output.textContent += typeof data === "string" ? data : JSON.stringify(data);
          } else if (event === "error") {
            throw new Error(data.message || (data.error && data.error.message) || "The chain failed.");
          }
        } else if (line === "") event = "message";
      }
    }
    const ms = performance.now() - started;
    const ttfc = first === null ? "no output" : `first piece after ${((first - started) / 1000).toFixed(2)} s`;
    ui.stats.textContent = `${ui.model.value} · ${(ms / 1000).toFixed(2)} s · ${pieces} pieces, ${ttfc}`;
  } finally {
    busy(false);
  }
}

// -- the same call, to copy ------------------------------------------------------------------------

// A value as Python source (JSON's strings and numbers are Python's too; only the constants differ).
function python(value, indent = "") {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  const inner = indent + "    ";
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => inner + python(v, inner)).join(",\n")},\n${indent}]`;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${python(v, inner)}`).join(",\n")},\n${indent}}`;
  }
  return JSON.stringify(value);
}

function showSnippet() {
  let body;
  try {
    body = requestBody();
  } catch {
    return;
  }
  const url = `${location.origin}/v1/chains/${ui.chain.value}/invoke`;
  const json = JSON.stringify(body, null, 2);
  ui.snippet.textContent = ui.snippetKind.value === "curl"
    ? `curl ${url} \\\n  -H "Authorization: Bearer $SLIPWAY_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${json.replaceAll("'", "'\\''")}'`
    : `import os\n\nimport httpx\n\nbody = ${python(body)}\nr = httpx.post(\n    "${url}",\n    json=body,\n    headers={"Authorization": f"Bearer {os.environ['SLIPWAY_API_KEY']}"},\n    timeout=300,\n)\nprint(r.json()["output"])`;
}

// -- wiring ----------------------------------------------------------------------------------------

ui.chain.addEventListener("change", buildForm);
ui.form.addEventListener("input", showSnippet);
ui.form.addEventListener("change", showSnippet);
ui.snippetKind.addEventListener("change", showSnippet);
ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  invoke().catch((error) => notify(error.message));
});
ui.stream.addEventListener("click", () => {
  if (!ui.form.reportValidity()) return;
  stream().catch((error) => notify(error.message));
});
ui.copySnippet.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.snippet.textContent);
    ui.copySnippet.textContent = "Copied";
  } catch {
    ui.copySnippet.textContent = "Copy failed";
  }
  setTimeout(() => { ui.copySnippet.textContent = "Copy"; }, 1500);
});

async function start() {
  try {
    const [list, models] = await Promise.all([api("/v1/chains"), api("/v1/models")]);
    for (const chain of list.data) chains.set(chain.id, chain);
    ui.chain.replaceChildren(...list.data.map((c) => option(c.id, c.id)));
    const chat = models.data.filter((m) => !(m.slipway && m.slipway.kind === "embedding"));
    ui.model.replaceChildren(...chat.map((m) => option(m.id, m.id)));
    const wanted = new URLSearchParams(location.search).get("chain");
    if (wanted && chains.has(wanted)) ui.chain.value = wanted;
    buildForm();
  } catch (error) {
    notify(error.message);
  }
}

start();
