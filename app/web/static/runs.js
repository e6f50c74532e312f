// Evaluation runs (GET /api/eval/runs): a table of runs with each metric and its interval, a trend of
// one metric across the runs of one dataset (an SVG built as DOM nodes), each run's report.html as a
// download, and a comparison of two runs (GET /api/eval/compare: the harness's paired bootstrap).

import { api, ApiError, fetchWithKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const ui = {
  notice: $("notice"), none: $("no-runs"), table: $("runs"), head: $("runs-head"), body: $("runs-body"),
  dataset: $("trend-dataset"), metric: $("trend-metric"), trend: $("trend"), compare: $("compare-form"),
  a: $("run-a"), b: $("run-b"), differences: $("differences"), comparison: $("comparison"),
  comparisonBody: $("comparison-body"), casesTitle: $("cases-title"), cases: $("cases"),
};
let runs = [];

function notify(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

const fmt = (v) => (typeof v === "number" ? (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3)) : "–");

function metricNames() {
  const names = new Set();
  runs.forEach((r) => Object.keys(r.metrics).forEach((m) => names.add(m)));
  return [...names];
}

function showTable() {
  const names = metricNames();
  ui.head.replaceChildren(
    ...["Run", "From", "Dataset", "Target · model", "Started", "Cases"].map((h) => el("th", h, { scope: "col" })),
    ...names.map((m) => el("th", m, { scope: "col" })),
    el("th", "Report", { scope: "col" }),
  );
  ui.body.replaceChildren(
    ...runs.map((run) => {
      const tr = el("tr");
      tr.dataset.id = run.id;
      tr.append(
        el("th", run.name || run.id, { scope: "row" }),
        el("td", run.source === "mlflow" ? `MLflow${run.gate === "failed" ? " (gate failed)" : ""}` : "folder"),
        el("td", run.dataset || "–"),
        el("td", [run.target, run.model].filter(Boolean).join(" · ") || "–"),
        el("td", run.started ? new Date(run.started).toLocaleString() : "–"),
        el("td", run.n ?? "–"),
      );
      for (const name of names) {
        const m = run.metrics[name];
        const td = el("td", m ? fmt(m.value) : "–");
        td.dataset.metric = name;
        if (m && m.ci_low != null) td.append(el("span", ` [${fmt(m.ci_low)}, ${fmt(m.ci_high)}]`, { class: "muted ci" }));
        tr.append(td);
      }
      const cell = el("td");
      if (run.has_report) {
        const button = el("button", "Download", { type: "button", "aria-label": `Download the report of ${run.id}` });
        button.addEventListener("click", () => download(run.id).catch((e) => notify(e.message)));
        cell.append(button);
      } else cell.textContent = "–";
      tr.append(cell);
      return tr;
    }),
  );
  ui.table.hidden = runs.length === 0;
}

async function download(id) {
  const response = await fetchWithKey(`/api/eval/runs/${encodeURIComponent(id)}/report`);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", null, { href: url, download: `${id}-report.html` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// -- trend -------------------------------------------------------------------------------------------

function showTrend() {
  const points = runs.filter((r) => (r.dataset || "") === ui.dataset.value && r.metrics[ui.metric.value]);
  const width = 640;
  const height = 220;
  const pad = 44;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${ui.metric.value} across ${points.length} runs of ${ui.dataset.value || "the dataset"}`);
  const values = points.flatMap((r) => {
    const m = r.metrics[ui.metric.value];
    return [m.value, m.ci_low ?? m.value, m.ci_high ?? m.value];
  });
  const low = Math.min(...values, 0);
  const high = Math.max(...values, low + 1e-9);
  const x = (i) => pad + (points.length <= 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (points.length - 1));
  const y = (v) => height - pad - ((v - low) / (high - low)) * (height - 2 * pad);
  const line = (x1, y1, x2, y2, cls) => {
    const l = document.createElementNS(SVG, "line");
    Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => l.setAttribute(k, v));
    return l;
  };
  const text = (tx, ty, value, anchor = "end") => {
    const t = document.createElementNS(SVG, "text");
    Object.entries({ x: tx, y: ty, "text-anchor": anchor, class: "axis-label" }).forEach(([k, v]) => t.setAttribute(k, v));
    t.textContent = value;
    return t;
  };
  svg.append(line(pad, height - pad, width - pad, height - pad, "axis"), line(pad, pad, pad, height - pad, "axis"));
  svg.append(text(pad - 6, y(high) + 4, fmt(high)), text(pad - 6, y(low) + 4, fmt(low)));
  let path = "";
  points.forEach((run, i) => {
    const m = run.metrics[ui.metric.value];
    if (m.ci_low != null) svg.append(line(x(i), y(m.ci_low), x(i), y(m.ci_high), "interval"));
    const dot = document.createElementNS(SVG, "circle");
    Object.entries({ cx: x(i), cy: y(m.value), r: 4, class: "point" }).forEach(([k, v]) => dot.setAttribute(k, v));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${run.id}: ${fmt(m.value)}`;
    dot.append(title);
    svg.append(dot, text(x(i), height - pad + 16, run.id.slice(0, 14), "middle"));
    path += `${i ? "L" : "M"}${x(i)},${y(m.value)} `;
  });
  const trendLine = document.createElementNS(SVG, "path");
  trendLine.setAttribute("d", path.trim() || "M0,0");
  trendLine.setAttribute("class", "trend-line");
  svg.prepend(trendLine);
  ui.trend.replaceChildren(svg);
}

// -- compare -----------------------------------------------------------------------------------------

async function compare() {
  notify("");
  // Nothing of an earlier comparison stays on screen beside a new one (or its error).
  ui.comparison.hidden = true;
  ui.casesTitle.hidden = true;
  ui.differences.replaceChildren();
  ui.cases.replaceChildren();
  const params = new URLSearchParams({ a: ui.a.value, b: ui.b.value });
  const result = await api(`/api/eval/compare?${params}`);
  ui.differences.replaceChildren(...result.differences.map((d) => el("li", `A and B differ in ${d}`)));
  ui.comparisonBody.replaceChildren(
    ...Object.entries(result.metrics).map(([name, m]) => {
      const tr = el("tr");
      tr.dataset.metric = name;
      tr.append(
        el("th", name, { scope: "row" }), el("td", fmt(m.a)), el("td", fmt(m.b)),
        el("td", (m.delta > 0 ? "+" : "") + fmt(m.delta), { class: m.delta < 0 ? "worse" : "" }),
        el("td", `[${fmt(m.ci_low)}, ${fmt(m.ci_high)}]`), el("td", fmt(m.p_value)),
        el("td", `${m.wins} / ${m.losses} / ${m.ties}`),
      );
      return tr;
    }),
  );
  ui.comparison.hidden = false;
  ui.casesTitle.hidden = result.cases.length === 0;
  ui.cases.replaceChildren(
    ...result.cases.map((c) => {
      const li = el("li");
      li.append(
        el("strong", `${c.id} (METEOR ${(c.delta_meteor > 0 ? "+" : "") + fmt(c.delta_meteor)})`),
        el("p", c.prompt || "", { class: "muted" }),
        el("p", `A: ${c.a}`), el("p", `B: ${c.b}`),
      );
      return li;
    }),
  );
}

async function start() {
  try {
    const list = await api("/api/eval/runs");
    runs = list.data;
    ui.none.hidden = runs.length > 0;
    ui.none.textContent = list.configured
      ? "No runs yet: `python -m eval run ... --out <runs folder>/<name>` (or `--mlflow-uri`) writes one."
      : "No runs folder is configured: set SLIPWAY_EVAL_RUNS_DIR to where `python -m eval` writes its runs "
        + "(and SLIPWAY_EVAL_MLFLOW_URI to list the runs of an MLflow server).";
    if (list.mlflow && list.mlflow.error) notify(list.mlflow.error);
    showTable();
    const datasets = [...new Set(runs.map((r) => r.dataset || ""))];
    ui.dataset.replaceChildren(...datasets.map((d) => el("option", d || "(unnamed)", { value: d })));
    const names = metricNames();
    ui.metric.replaceChildren(...names.map((m) => el("option", m, { value: m })));
    if (names.includes("meteor")) ui.metric.value = "meteor";
    const options = () => runs.map((r) => el("option", r.name || r.id, { value: r.id }));
    ui.a.replaceChildren(...options());
    ui.b.replaceChildren(...options());
    if (runs.length > 1) ui.b.value = runs[runs.length - 1].id;
    if (runs.length) showTrend();
  } catch (error) {
    notify(error.message);
  }
}

ui.dataset.addEventListener("change", showTrend);
ui.metric.addEventListener("change", showTrend);
ui.compare.addEventListener("submit", (event) => {
  event.preventDefault();
  compare().catch((error) => notify(error.message));
});

start();
