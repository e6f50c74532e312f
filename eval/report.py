"""Self-contained HTML reports: one file, plots embedded as base64 PNG, no script, no network.

A run's report.html: headline numbers with their intervals, a forest plot of every metric with its
95% CI, the distribution of each metric over cases, latency and tokens, the worst cases, errors, and
every case with prediction and references side by side. A comparison's report.html: B - A per metric
with its paired-bootstrap interval and p-value, wins and losses, per-case difference distributions,
and the cases that moved most.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from eval.metrics import ALL, CORPUS

LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rougeLsum": "ROUGE-Lsum",
    "meteor": "METEOR",
    "judge": "Judge (1-5)",
    "similarity": "Similarity",
    "exact_match": "exact match",
    "length_ratio": "length ratio",
}
TABLE_METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "meteor")
BLUE, ORANGE, GREY = "#3b6fb6", "#d9822b", "#8a8f98"

STYLE = """
:root{--fg:#1d2330;--muted:#5b6472;--line:#dde1e7;--bg:#f6f7f9;--blue:#3b6fb6;--good:#1f7a3f;--bad:#b3261e}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
margin:0;background:#fff}main{max-width:1280px;margin:0 auto;padding:1.5rem 2rem 4rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:2.2rem 0 .6rem;border-bottom:1px solid var(--line);
padding-bottom:.3rem}.meta{color:var(--muted);margin:.2rem 0 1rem}.meta code{font-size:.85em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.7rem;margin:1rem 0}
.card{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem}
.card .k{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:1.45rem;font-weight:600;font-variant-numeric:tabular-nums}
.card .ci{color:var(--muted);font-size:.8rem;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}td.text{max-width:30rem;white-space:pre-wrap;overflow-wrap:anywhere}
.refs{margin:0;padding-left:1rem}.err{color:var(--bad)}.pos{color:var(--good)}.neg{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1rem}
figure{margin:0}img{max-width:100%;height:auto}figcaption{color:var(--muted);font-size:.85rem}
.note{color:var(--muted);font-size:.85rem}
"""


# ---------------------------------------------------------------- plots


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; also keeps a notebook's backend untouched for this figure
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _scale(name: str) -> float:
    """BLEU and chrF print 0-100 (sacrebleu's scale); plots that mix metrics use 0-1."""
    return 100.0 if name in CORPUS else 1.0


def _forest(items: list[tuple[str, float, float | None, float | None]], *, title: str, centre: float | None) -> str:
    """Point and 95% interval per metric, on one 0-1 axis (BLEU and chrF divided by 100)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(items) + 0.9))
    for y, (_label, value, low, high) in enumerate(reversed(items)):
        if low is not None and high is not None:
            ax.plot([low, high], [y, y], color=BLUE, lw=2.2, solid_capstyle="round")
        ax.plot([value], [y], "o", color=ORANGE if centre is not None and value < centre else BLUE, ms=6)
    ax.set_yticks(range(len(items)), [label for label, *_ in reversed(items)])
    if centre is not None:
        ax.axvline(centre, color=GREY, lw=1, ls="--")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _histogram(values: list[float], *, title: str, lo: float, hi: float, mark: float | None) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 2.3))
    ax.hist(values, bins=20, range=(lo, hi), color=BLUE, edgecolor="white")
    if mark is not None:
        ax.axvline(mark, color=ORANGE, lw=1.6)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("cases", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


# ---------------------------------------------------------------- html pieces


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<link rel=icon href='data:,'>"  # no favicon request, so no console error from file://
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>{body}</main>{tail}</body></html>"
    )


def _figure(src: str, caption: str) -> str:
    return f"<figure><img alt='{_e(caption)}' src='{src}'><figcaption>{_e(caption)}</figcaption></figure>"


def _refs(refs: list[str]) -> str:
    if len(refs) == 1:
        return _e(refs[0])
    return "<ol class=refs>" + "".join(f"<li>{_e(r)}</li>" for r in refs) + "</ol>"


def _grade(judge: dict[str, Any] | None) -> str:
    """The judge's grade and its rationale, or why the case was not graded."""
    if not judge:
        return "<td></td>"
    if "error" in judge:
        return f"<td class='text err'>not graded: {_e(judge['error'])}</td>"
    return f"<td class=text><b>{int(judge['score'])}/5</b> {_e(judge.get('rationale'))}</td>"


def _case_table(rows: list[dict[str, Any]]) -> str:
    graded = any(r.get("judge") for r in rows)
    heads = "".join(f"<th class=num>{LABELS[k]}</th>" for k in TABLE_METRICS) + ("<th>judge</th>" if graded else "")
    out = [f"<table><tr><th>id</th><th>prompt</th><th>prediction</th><th>reference(s)</th>{heads}</tr>"]
    for r in rows:
        m = r.get("metrics") or {}
        if r.get("error"):
            cells = f"<td class=err colspan={len(TABLE_METRICS) + graded}>{_e(r['error'])}</td>"
            prediction = ""
        else:
            cells = "".join(f"<td class=num>{_fmt(m.get(k), 3)}</td>" for k in TABLE_METRICS)
            cells += _grade(r.get("judge")) if graded else ""
            prediction = _e(r.get("prediction"))
        out.append(
            f"<tr><td>{_e(r['id'])}</td><td class=text>{_e(r.get('prompt'))}</td>"
            f"<td class=text>{prediction}</td><td class=text>{_refs(r.get('references') or [])}</td>{cells}</tr>"
        )
    out.append("</table>")
    return "".join(out)


# ---------------------------------------------------------------- a run


def render_run(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    metrics = summary.get("metrics") or {}
    scored = [r for r in rows if r.get("metrics")]
    errors = [r for r in rows if r.get("error")]
    what = " / ".join(str(x) for x in (summary.get("target"), summary.get("model"), summary.get("chain")) if x)
    parts = [
        f"<h1>Evaluation: {_e(what)}</h1>",
        f"<p class=meta>{summary.get('n')} cases, {summary.get('errors', 0)} errors"
        + (", stopped at --max-errors" if summary.get("stopped_at_max_errors") else "")
        + (f", {summary['cached']} answers from the cache" if summary.get("cached") else "")
        + f" &middot; started {_e(summary.get('started'))}, {_e(summary.get('duration_s'))} s"
        + (
            f" &middot; dataset sha256 <code>{_e(summary['dataset_sha256'][:12])}</code>"
            if summary.get("dataset_sha256")
            else ""
        )
        + "</p>",
    ]
    if not metrics:
        parts.append("<p class=err>No case was scored.</p>")
    else:
        parts.append("<div class=cards>")
        for name in (*ALL, "exact_match", "judge", "similarity"):
            m = metrics.get(name)
            if m is None:
                continue
            ci = f"95% CI {_fmt(m['ci_low'])} &ndash; {_fmt(m['ci_high'])}" if "ci_low" in m else "&nbsp;"
            parts.append(
                f"<div class=card><div class=k>{LABELS[name]}</div><div class=v>{_fmt(m['value'])}</div>"
                f"<div class=ci>{ci}</div></div>"
            )
        parts.append("</div><h2>Summary</h2>")
        parts.append(
            "<table><tr><th>metric</th><th class=num>value</th><th class=num>95% CI low</th>"
            "<th class=num>95% CI high</th><th>scale</th></tr>"
        )
        for name, m in metrics.items():
            unit = "0-100 (sacrebleu)" if name in CORPUS else "ratio" if name == "length_ratio" else "0-1"
            if name == "similarity":
                unit = f"cosine, -1 to 1, embeddings by {_e(m.get('embedder'))}"
            if name == "judge":
                unit = f"1-5, mean grade by {_e(m.get('judge'))} ({m.get('graded')} graded, {m.get('not_graded')} not)"
            parts.append(
                f"<tr><td>{LABELS.get(name, _e(name))}</td><td class=num>{_fmt(m['value'])}</td>"
                f"<td class=num>{_fmt(m.get('ci_low'))}</td><td class=num>{_fmt(m.get('ci_high'))}</td>"
                f"<td>{unit}</td></tr>"
            )
        parts.append("</table>")
        items = [
            (
                LABELS[k],
                metrics[k]["value"] / _scale(k),
                metrics[k]["ci_low"] / _scale(k),
                metrics[k]["ci_high"] / _scale(k),
            )
            for k in ALL
            if k in metrics
        ]
        forest = _forest(items, title="every metric with its 95% bootstrap interval", centre=None)
        parts.append(_figure(forest, "BLEU and chrF divided by 100 to share the 0-1 axis"))
        parts.append("<h2>Distributions over cases</h2><div class=grid>")
        for name in ALL:
            scale = _scale(name)
            values = [r["metrics"][name] for r in scored]
            mark = metrics[name]["value"] if name not in CORPUS else None
            src = _histogram(values, title=f"{LABELS[name]} per case", lo=0, hi=scale, mark=mark)
            caption = f"sentence-level {LABELS[name]}" if name in CORPUS else f"{LABELS[name]}; line: mean"
            parts.append(_figure(src, caption))
        parts.append("</div>")
    parts.append(_usage(summary, rows))
    if scored:
        worst = sorted(scored, key=lambda r: (r["metrics"]["meteor"], r["metrics"]["bleu"]))[:10]
        parts.append("<h2>Worst cases (lowest METEOR)</h2>" + _case_table(worst))
    if errors:
        parts.append(f"<h2>Errors ({len(errors)})</h2><table><tr><th>id</th><th>error</th></tr>")
        parts += [f"<tr><td>{_e(r['id'])}</td><td class=err>{_e(r['error'])}</td></tr>" for r in errors]
        parts.append("</table>")
    parts.append(f"<h2>All cases ({len(rows)})</h2>" + _case_table(rows))
    return _page("Slipway evaluation", "".join(parts))


def _usage(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    latency, usage = summary.get("latency_s"), summary.get("usage") or {}
    if not latency and not any(usage.values()):
        return ""
    out = ["<h2>Latency and tokens</h2><div class=cards>"]
    if latency:
        for key in ("p50", "p95", "max"):
            out.append(f"<div class=card><div class=k>latency {key}</div><div class=v>{latency[key]:.3g} s</div></div>")
    for key in ("prompt_tokens", "completion_tokens"):
        if usage.get(key) is not None:
            out.append(
                f"<div class=card><div class=k>{key.replace('_', ' ')}</div><div class=v>{usage[key]:,}</div></div>"
            )
    out.append("</div>")
    times = [r["latency_s"] for r in rows if r.get("latency_s") is not None]
    if len(times) > 1:
        src = _histogram(
            times,
            title="latency per case (s)",
            lo=0,
            hi=max(times) * 1.05 or 1,
            mark=latency["p50"] if latency else None,
        )
        out.append(f"<div class=grid>{_figure(src, 'line: median')}</div>")
    return "".join(out)


def write_report(run_dir: Path) -> Path:
    """Rebuild report.html from a run's files (or a comparison's compare.json)."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    if (run_dir / "compare.json").is_file() and not (run_dir / "summary.json").is_file():
        path.write_text(
            render_compare(json.loads((run_dir / "compare.json").read_text(encoding="utf-8"))), encoding="utf-8"
        )
        return path
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    path.write_text(render_run(summary, rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- a comparison


def render_compare(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    parts = [
        "<h1>Comparison: B against A</h1>",
        f"<p class=meta>A = <code>{_e(result['a'])}</code><br>B = <code>{_e(result['b'])}</code><br>"
        f"{result['n']} cases scored in both"
        + (
            f" ({result.get('only_a', 0)} only in A, {result.get('only_b', 0)} only in B)"
            if result.get("only_a") or result.get("only_b")
            else ""
        )
        + f" &middot; paired bootstrap, {result.get('resamples', 1000)} resamples, seed {result.get('seed', 0)}</p>"
        + (
            "<p class='meta neg'>A and B also differ in: " + _e("; ".join(result["differences"])) + "</p>"
            if result.get("differences")
            else ""
        ),
        "<table><tr><th>metric</th><th class=num>A</th><th class=num>B</th><th class=num>B - A</th>"
        "<th class=num>95% CI of B - A</th><th class=num>p</th><th class=num>B better</th>"
        "<th class=num>B worse</th><th class=num>ties</th></tr>",
    ]
    for name, m in metrics.items():
        cls = "pos" if m["delta"] > 0 else "neg" if m["delta"] < 0 else ""
        parts.append(
            f"<tr><td>{LABELS.get(name, _e(name))}</td><td class=num>{_fmt(m.get('a'))}</td>"
            f"<td class=num>{_fmt(m.get('b'))}</td><td class='num {cls}'>{m['delta']:+.4g}</td>"
            f"<td class=num>{_fmt(m.get('ci_low'))} &ndash; {_fmt(m.get('ci_high'))}</td>"
            f"<td class=num>{m['p_value']:.3f}</td><td class=num>{m['wins']}</td><td class=num>{m['losses']}</td>"
            f"<td class=num>{m['ties']}</td></tr>"
        )
    parts.append(
        "</table><p class=note>p: sacrebleu's paired bootstrap test (small p: the difference is unlikely to be "
        "chance). Better/worse count cases by their sentence-level scores.</p>"
    )
    items = [
        (
            LABELS[k],
            metrics[k]["delta"] / _scale(k),
            metrics[k].get("ci_low", 0) / _scale(k),
            metrics[k].get("ci_high", 0) / _scale(k),
        )
        for k in ALL
        if k in metrics
    ]
    forest = _forest(items, title="B - A with its 95% paired bootstrap interval", centre=0.0)
    parts.append(_figure(forest, "BLEU and chrF divided by 100; left of the dashed line B is worse"))
    cases = result.get("cases") or []
    if cases:
        parts.append("<h2>Per-case differences</h2><div class=grid>")
        for key, name in (("delta_meteor", "meteor"), ("delta_bleu", "bleu")):
            values = [c[key] for c in cases if key in c]
            if values:
                scale = _scale(name)
                src = _histogram(values, title=f"{LABELS[name]}: B - A per case", lo=-scale, hi=scale, mark=0.0)
                parts.append(_figure(src, "right of the line: B better"))
        parts.append("</div>")
        parts.append(_case_diff(cases))
    return _page("Slipway comparison", "".join(parts), script=CASE_FILTER if cases else "")


#: The per-case table's filter and sort: the report's one script, inline (the file stays self-contained).
#: It reads and reorders rows only; every cell's text was escaped when the page was written.
CASE_FILTER = """
(() => {
  const table = document.getElementById('cases');
  const rows = [...table.tBodies[0].rows];
  const text = document.getElementById('case-filter');
  const show = document.getElementById('case-show');
  const sortBy = document.getElementById('case-sort');
  const count = document.getElementById('case-count');
  function apply() {
    const needle = text.value.trim().toLowerCase();
    const metric = sortBy.value;
    rows.sort((a, b) => Number(a.dataset[metric]) - Number(b.dataset[metric]));
    let shown = 0;
    for (const row of rows) {
      const delta = Number(row.dataset[metric]);
      const kind = show.value;
      const ok = (!needle || row.innerText.toLowerCase().includes(needle))
        && (kind === 'all' || (kind === 'worse' && delta < 0) || (kind === 'better' && delta > 0)
            || (kind === 'same' && delta === 0));
      row.hidden = !ok;
      if (ok) shown += 1;
      table.tBodies[0].appendChild(row);
    }
    count.textContent = shown + ' of ' + rows.length + ' cases shown';
  }
  for (const el of [text, show, sortBy]) el.addEventListener('input', apply);
  apply();
})();
"""


def _case_diff(cases: list[dict[str, Any]]) -> str:
    """Every shared case side by side with each metric's per-case B - A, largest regression first."""
    names = [k for k in ALL if k in (cases[0].get("deltas") or {})] or ["meteor", "bleu"]
    options = "".join(f"<option value=d{k.lower()}>{LABELS.get(k, _e(k))}</option>" for k in names)
    parts = [
        "<h2>Every case, B against A</h2>",
        "<p class=note>Sorted by the chosen metric's B - A, largest regression first.</p>",
        "<p><input id=case-filter type=search placeholder='filter: id, prompt, answer, reference' size=40> "
        "<select id=case-show><option value=all>all cases</option><option value=worse>B worse</option>"
        "<option value=better>B better</option><option value=same>no change</option></select> "
        f"sort by <select id=case-sort>{options}</select> <span id=case-count class=note></span></p>",
        "<table id=cases><thead><tr><th>id</th><th>prompt</th><th>reference(s)</th><th>A</th><th>B</th>"
        + "".join(f"<th class=num>&Delta; {LABELS.get(k, _e(k))}</th>" for k in names)
        + "</tr></thead><tbody>",
    ]
    for c in cases:
        deltas = c.get("deltas") or {"meteor": c["delta_meteor"], "bleu": c.get("delta_bleu", 0.0)}
        data = "".join(f" data-d{k.lower()}='{deltas.get(k, 0.0):.6g}'" for k in names)
        cells = "".join(
            f"<td class='num {'pos' if deltas.get(k, 0) > 0 else 'neg' if deltas.get(k, 0) < 0 else ''}'>"
            f"{deltas.get(k, 0.0):+.3g}</td>"
            for k in names
        )
        parts.append(
            f"<tr{data}><td>{_e(c['id'])}</td><td class=text>{_e(c.get('prompt'))}</td>"
            f"<td class=text>{_refs(c.get('references') or [])}</td><td class=text>{_e(c['a'])}</td>"
            f"<td class=text>{_e(c['b'])}</td>{cells}</tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)
