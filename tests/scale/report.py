"""The scale report from the figures `tests/scale` wrote (`SLIPWAY_SCALE_REPORT`):

    python -m tests.scale.report FIGURES.json OUT_DIR     # writes OUT_DIR/report.md and OUT_DIR/rss.svg

`bash scripts/scale.sh` runs the proofs and the soak, then this. The RSS plot is a plain SVG (no
plotting library in the test tools for one chart).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLORS = ["#1f77b4", "#d62728", "#2ca02c"]


def rss_svg(samples: list[dict[str, Any]], width: int = 640, height: int = 300) -> str:
    """RSS (MiB) of each replica over the soak, as polylines with labelled axes."""
    pad = 50
    replicas = sorted(k for k in samples[0] if k.startswith("r"))
    t_max = max(s["t"] for s in samples) or 1.0
    values = [s[r]["rss_kib"] / 1024 for s in samples for r in replicas]
    low, high = min(values) * 0.95, max(values) * 1.05

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / t_max

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v - low) / ((high - low) or 1.0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">seconds</text>',
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">RSS (MiB)</text>',
        f'<text x="{pad - 4}" y="{y(high) + 4}" text-anchor="end">{high:.0f}</text>',
        f'<text x="{pad - 4}" y="{y(low) + 4}" text-anchor="end">{low:.0f}</text>',
        f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end">{t_max:.0f}</text>',
    ]
    for index, replica in enumerate(replicas):
        points = " ".join(f"{x(s['t']):.1f},{y(s[replica]['rss_kib'] / 1024):.1f}" for s in samples)
        color = COLORS[index % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{width - pad + 4}" y="{pad + 16 * index}" fill="{color}">{replica}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def markdown(figures: dict[str, Any]) -> str:
    lines = ["# Slipway scale report", "", "Three replicas behind HAProxy, shared Postgres and Redis (tests/scale).", ""]
    for section, values in figures.items():
        lines += [f"## {section}", ""]
        for name, value in values.items():
            if name == "samples":
                lines.append(f"- samples: {len(value)} (RSS plot: rss.svg)")
                continue
            lines.append(f"- {name}: {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    figures = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(figures))
    samples = figures.get("soak", {}).get("samples")
    if samples:
        (out / "rss.svg").write_text(rss_svg(samples))
    print(f"report: {out / 'report.md'}" + (f", RSS plot: {out / 'rss.svg'}" if samples else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
