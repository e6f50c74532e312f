"""One self-contained report.html per run (plots embedded as base64 PNG; no network, no scripts)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;
vertical-align:top;text-align:left}th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:1rem}
.err{color:#a00}.pos{color:#070}.neg{color:#a00}"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _histograms(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eval.metrics import ALL

    out = []
    scored = [r for r in rows if r.get("metrics")]
    for name in ALL:
        fig, ax = plt.subplots(figsize=(3.6, 2.4))
        ax.hist([r["metrics"][name] for r in scored], bins=20, color="#4a7fb5")
        ax.set_title(f"{name} per case")
        out.append((name, _png(fig)))
        plt.close(fig)
    return out


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
        f"content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def render_run(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    e = html.escape
    parts = [
        f"<h1>Evaluation: {e(str(summary.get('target')))} / {e(str(summary.get('model')))}</h1>",
        f"<p>{summary.get('n')} cases, {summary.get('errors')} errors, {summary.get('duration_s')} s, "
        f"started {e(str(summary.get('started')))}</p>",
        "<h2>Summary</h2><table><tr><th>metric</th><th>value</th><th>95% CI</th></tr>",
    ]
    for name, m in summary.get("metrics", {}).items():
        ci = f"{m['ci_low']:.4g} to {m['ci_high']:.4g}" if "ci_low" in m else ""
        parts.append(f"<tr><td>{e(name)}</td><td class=num>{m['value']:.4g}</td><td class=num>{ci}</td></tr>")
    parts.append("</table><h2>Distributions</h2><div class=grid>")
    parts += [f"<img alt='{e(n)} distribution' src='{src}'>" for n, src in _histograms(rows)]
    parts.append("</div><h2>Worst cases (METEOR)</h2>")
    scored = sorted((r for r in rows if r.get("metrics")), key=lambda r: r["metrics"]["meteor"])
    parts.append(_case_table(scored[:10]))
    errors = [r for r in rows if r.get("error")]
    if errors:
        parts.append("<h2>Errors</h2><table><tr><th>id</th><th>error</th></tr>")
        parts += [f"<tr><td>{e(r['id'])}</td><td class=err>{e(r['error'])}</td></tr>" for r in errors]
        parts.append("</table>")
    parts.append("<h2>All cases</h2>" + _case_table(rows))
    return _page("Slipway evaluation", "".join(parts))


def _case_table(rows: list[dict[str, Any]]) -> str:
    e = html.escape
    out = [
        "<table><tr><th>id</th><th>prompt</th><th>prediction</th><th>reference</th><th>BLEU</th><th>ROUGE-L</th>"
        "<th>METEOR</th></tr>"
    ]
    for r in rows:
        m = r.get("metrics") or {}
        cells = "".join(
            f"<td class=num>{m[k]:.3g}</td>" if k in m else "<td></td>" for k in ("bleu", "rougeL", "meteor")
        )
        out.append(
            f"<tr><td>{e(str(r['id']))}</td><td>{e(r.get('prompt') or '')}</td><td>{e(r.get('prediction') or '')}</td>"
            f"<td>{e(' | '.join(r.get('references') or []))}</td>{cells}</tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_compare(result: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        f"<h1>Comparison</h1><p>A = {e(result['a'])}<br>B = {e(result['b'])}<br>{result['n']} shared cases</p>",
        "<table><tr><th>metric</th><th>B - A</th><th>p (paired bootstrap)</th><th>wins</th><th>losses</th>"
        "<th>ties</th></tr>",
    ]
    for name, m in result["metrics"].items():
        cls = "pos" if m["delta"] > 0 else "neg" if m["delta"] < 0 else ""
        parts.append(
            f"<tr><td>{e(name)}</td><td class='num {cls}'>{m['delta']:+.4g}</td><td class=num>{m['p_value']:.3f}</td>"
            f"<td class=num>{m['wins']}</td><td class=num>{m['losses']}</td><td class=num>{m['ties']}</td></tr>"
        )
    parts.append(
        "</table><h2>Per case (METEOR difference)</h2><table><tr><th>id</th><th>prompt</th><th>A</th><th>B</th>"
        "<th>Δ METEOR</th></tr>"
    )
    for c in sorted(result["cases"], key=lambda c: c["delta_meteor"]):
        parts.append(
            f"<tr><td>{e(c['id'])}</td><td>{e(c['prompt'])}</td><td>{e(c['a'])}</td><td>{e(c['b'])}</td>"
            f"<td class=num>{c['delta_meteor']:+.3f}</td></tr>"
        )
    parts.append("</table>")
    return _page("Slipway comparison", "".join(parts))


def write_report(run_dir: Path) -> Path:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    path = run_dir / "report.html"
    path.write_text(render_run(summary, rows), encoding="utf-8")
    return path
