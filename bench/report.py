"""The benchmark summary: Markdown tables, plots, and the regression guard against bench/baseline.json.

The guard compares ratios measured within one run (Slipway against LiteLLM and the bare mock on the
same machine at the same moment; local tokens/s against llama-cpp-python; eval against the plain
loop), never absolute times, so a baseline taken on one machine still means something on another.
A ratio more than 20% worse than the baseline's is flagged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASELINE = Path(__file__).resolve().parent / "baseline.json"
TOLERANCE = 0.20
#: Guard metrics: name -> True when higher is better.
HIGHER_IS_BETTER_PREFIXES = {
    "rps_vs_": True,
    "p99_overhead_vs_litellm": False,
    "memory_growth": False,
    "local_tokens_ratio": True,
    "eval_speedup": True,
}


def guard_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The ratios the regression guard watches, from one run's results."""
    out: dict[str, float] = {}
    cells = {(c["scenario"], c["concurrency"], c["target"]): c for c in results.get("overhead", [])}
    for (scenario, conc, target), cell in cells.items():
        if target != "slipway":
            continue
        direct = cells.get((scenario, conc, "direct"))
        if direct and direct["rps"]:
            out[f"rps_vs_direct.{scenario}.c{conc}"] = cell["rps"] / direct["rps"]
        peer = cells.get((scenario, conc, "litellm"))
        if peer:
            out[f"rps_vs_litellm.{scenario}.c{conc}"] = cell["rps"] / peer["rps"]
            if peer["overhead_p99_ms"] and peer["overhead_p99_ms"] > 0:
                out[f"p99_overhead_vs_litellm.{scenario}.c{conc}"] = (
                    max(cell["overhead_p99_ms"], 0.0) / peer["overhead_p99_ms"]
                )
    for row in results.get("memory", []):
        out[f"memory_growth.{row['target']}"] = row["growth_ratio"]
    if "local" in results:
        out["local_tokens_ratio"] = results["local"]["ratio_tokens_per_s"]
    if "eval" in results:
        out["eval_speedup"] = results["eval"]["ratio"]
    return {k: round(v, 4) for k, v in out.items()}


def issue_targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue #18's targets from this run's figures: (target, what was measured, met?)."""
    out: list[tuple[str, str, bool]] = []
    cells = {(c["scenario"], c["concurrency"], c["target"]): c for c in results.get("overhead", [])}
    plain1 = cells.get(("plain", 1, "slipway"))
    if plain1:
        out.append(
            (
                "added p50 at one client <= 0.5 ms",
                f"{plain1['overhead_p50_ms']:+.2f} ms",
                plain1["overhead_p50_ms"] <= 0.5,
            )
        )
        out.append(
            (
                "added p99 at one client <= 1.0 ms",
                f"{plain1['overhead_p99_ms']:+.2f} ms",
                plain1["overhead_p99_ms"] <= 1.0,
            )
        )
    stream1 = cells.get(("stream", 1, "slipway"))
    if stream1 and stream1.get("overhead_ttfc_p50_ms") is not None:
        value = stream1["overhead_ttfc_p50_ms"]
        out.append(("time to first chunk p50 at one client <= +0.5 ms", f"{value:+.2f} ms", value <= 0.5))
    baseline = load_baseline()
    slipways = sorted({key[2] for key in cells if key[2].startswith("slipway")})
    for conc in (16, 64):
        direct = cells.get(("plain", conc, "direct"))
        then = baseline.get(f"rps_vs_direct.plain.c{conc}")
        for name in slipways:
            cell = cells.get(("plain", conc, name))
            if cell and direct and direct["rps"] and then:
                factor = (cell["rps"] / direct["rps"]) / then
                out.append(
                    (
                        f"req/s at {conc} clients >= 2x the baseline's ({name})",
                        f"x{factor:.2f} ({cell['rps']:.0f} req/s, {cell['failed']} failed)",
                        factor >= 2 and not cell["failed"],
                    )
                )
    if results.get("streams"):
        carried = results["streams"]["carries"].get("slipway", 0)
        out.append(("stall-free streams carried >= 256", str(carried), carried >= 256))
    for row in results.get("memory", []):
        if row["target"] == "slipway" and "growth_ratio_long" in row:
            ratio = row["growth_ratio_long"]
            out.append(
                (
                    f"memory after {row['long_requests']:,} within 5% of after the second point",
                    f"x{ratio:.3f}",
                    ratio <= 1.05,
                )
            )
    for peer in ("litellm", "portkey"):
        compared = [
            (key, cell, cells[(key[0], key[1], peer)])
            for key, cell in cells.items()
            if key[2] == "slipway" and (key[0], key[1], peer) in cells
        ]
        if not compared:
            continue
        behind = [
            f"{scenario} c={conc}"
            for (scenario, conc, _), mine, theirs in compared
            if not theirs["failed"]
            and (mine["rps"] < theirs["rps"] or mine["overhead_p50_ms"] > theirs["overhead_p50_ms"])
        ]
        failed = [f"{s} c={c}" for (s, c, _), _, theirs in compared if theirs["failed"]]
        measured = f"behind at {', '.join(behind)}" if behind else "ahead at every cell"
        if failed:
            measured += f" ({peer} failed requests at {', '.join(failed)})"
        out.append((f"ahead of {peer} (req/s and p50 overhead) at every cell", measured, not behind))
    return out


def higher_is_better(name: str) -> bool:
    for prefix, higher in HIGHER_IS_BETTER_PREFIXES.items():
        if name.startswith(prefix):
            return higher
    return True


def compare(
    current: dict[str, float], baseline: dict[str, float], tolerance: float = TOLERANCE
) -> list[dict[str, Any]]:
    """Each metric in both: its change as a factor where > 1 is better; `regressed` past the tolerance."""
    rows = []
    for name in sorted(set(current) & set(baseline)):
        now, then = current[name], baseline[name]
        if then == 0 or now == 0:
            continue
        better = now / then if higher_is_better(name) else then / now
        rows.append(
            {
                "metric": name,
                "baseline": then,
                "now": now,
                "factor": round(better, 3),
                "regressed": better < 1 - tolerance,
            }
        )
    return rows


def load_baseline(path: Path = BASELINE) -> dict[str, float]:
    return json.loads(path.read_text())["metrics"] if path.exists() else {}


def save_baseline(metrics: dict[str, float], meta: dict[str, Any], path: Path = BASELINE) -> None:
    path.write_text(json.dumps({"meta": meta, "metrics": metrics}, indent=2, sort_keys=True) + "\n")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    cells = results.get("overhead", [])
    if cells:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, scenario in zip(axes, ("plain", "stream"), strict=True):
            for target in sorted({c["target"] for c in cells if c["target"] != "direct"}):
                series = sorted(
                    (c["concurrency"], c["overhead_p50_ms"], c["overhead_p99_ms"])
                    for c in cells
                    if c["scenario"] == scenario and c["target"] == target
                )
                if not series:
                    continue
                xs = [s[0] for s in series]
                floor = 0.01  # a log axis: an overhead at or below zero (noise) sits on the floor
                ax.plot(xs, [max(s[1], floor) for s in series], marker="o", label=f"{target} p50")
                ax.plot(xs, [max(s[2], floor) for s in series], marker="s", linestyle="--", label=f"{target} p99")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel("overhead over the bare mock (ms)")
            ax.set_title(f"{scenario}: gateway overhead")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "overhead.png", dpi=110)
        plt.close(fig)
        names.append("overhead.png")
    raw = results.get("overhead_raw", [])
    if raw:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, scenario in zip(axes, ("plain", "stream"), strict=True):
            conc = 16 if any(r["concurrency"] == 16 for r in raw) else max(r["concurrency"] for r in raw)
            groups: dict[str, list[float]] = {}
            for r in raw:
                if r["scenario"] == scenario and r["concurrency"] == conc:
                    groups.setdefault(r["target"], []).extend(r["sample_ms"])
            if groups:
                ax.boxplot(list(groups.values()), tick_labels=list(groups), showfliers=False)
                ax.set_yscale("log")
                ax.set_ylabel("latency (ms)")
                ax.set_title(f"{scenario}: latency at {conc} concurrent clients")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        names.append("latency.png")
    return names


def markdown(results: dict[str, Any], guard: list[dict[str, Any]], images: list[str]) -> str:
    meta = results["meta"]
    lines = [f"# Slipway benchmarks ({meta['date']})", "", f"Machine: {meta['machine']}. {meta['note']}", ""]
    cells = results.get("overhead", [])
    if cells:
        lines += [
            "## Gateway overhead (ms over the bare mock; medians over rounds)",
            "",
            "| scenario | clients | target | p50 | p99 | req/s | TTFC p50 | overhead p50 | overhead p99 | overhead TTFC p50 | failed |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in cells:
            lines.append(
                f"| {c['scenario']} | {c['concurrency']} | {c['target']} | {_fmt(c['p50_ms'])} | {_fmt(c['p99_ms'])} | "
                f"{_fmt(c['rps'], 0)} | {_fmt(c['ttfc_p50_ms'])} | {_fmt(c.get('overhead_p50_ms'))} | "
                f"{_fmt(c.get('overhead_p99_ms'))} | {_fmt(c.get('overhead_ttfc_p50_ms'))} | {c['failed']} |"
            )
        lines.append("")
    for image in images:
        lines += [f"![{image}]({image})", ""]
    if results.get("memory"):
        lines += [
            "## Memory (RSS of the gateway process)",
            "",
            "| target | start | after first | after second | growth | long run | after it | growth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["memory"]:
            values = [v for k, v in row.items() if k.startswith("rss_")]
            long = (
                f"{row['long_requests']:,} | {values[3]} MiB | x{row['growth_ratio_long']:.3f}"
                if "long_requests" in row
                else "- | - | -"
            )
            lines.append(
                f"| {row['target']} | {values[0]} MiB | {values[1]} MiB | {values[2]} MiB | x{row['growth_ratio']:.3f} | {long} |"
            )
        lines.append("")
    if results.get("streams"):
        st = results["streams"]
        lines += [
            f"## Stall-free streams (a text chunk every {st['pace_ms']:g} ms; gap between chunks at the client)",
            "",
            "| streams | target | gap p50 | gap p99 | gap max | failed |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for r in st["rows"]:
            lines.append(
                f"| {r['streams']} | {r['target']} | {_fmt(r['gap_p50_ms'])} | {_fmt(r['gap_p99_ms'])} | {_fmt(r['gap_max_ms'])} | {r['failed']} |"
            )
        carried = ", ".join(f"{name} {n}" for name, n in sorted(st["carries"].items()))
        lines += ["", f"Streams carried with gap p99 <= {st['limit_ms']:g} ms and none failed: {carried}.", ""]
    targets = issue_targets(results)
    if targets:
        lines += ["## Issue #18's targets", "", "| target | measured | |", "|---|---|---|"]
        for name, measured, met in targets:
            lines.append(f"| {name} | {measured} | {'met' if met else '**not met**'} |")
        lines.append("")
    if results.get("profile"):
        p = results["profile"]
        lines += [
            f"## Where Slipway's CPU goes ({p['us_per_request']} µs per request over {p['requests']} requests)",
            "",
            "| layer | share | µs/request |",
            "|---|---:|---:|",
        ]
        for name, item in p["layers"].items():
            lines.append(f"| {name} | {item['share'] * 100:.1f}% | {item['us_per_request']} |")
        lines += ["", "Functions with the most own time:", "", "| function | layer | µs/request |", "|---|---|---:|"]
        for f in p.get("top_functions", [])[:15]:
            lines.append(f"| `{f['function']}` | {f['layer']} | {f['us_per_request']} |")
        lines.append("")
    if "local" in results:
        r = results["local"]
        lines += [
            "## Local model",
            "",
            f"Tokens/s through Slipway vs llama-cpp-python direct: {r['slipway']['tokens_per_s']:.1f} vs {r['direct']['tokens_per_s']:.1f} = **{r['ratio_tokens_per_s']:.3f}**; TTFT overhead {r['ttft_overhead_ms']:.1f} ms.",
            "",
        ]
    if "eval" in results:
        r = results["eval"]
        lines += [
            "## Evaluation",
            "",
            f"Pairs scored per second: eval.score {r['score_pairs_per_s']:.0f} vs plain library loop {r['plain_pairs_per_s']:.0f} = **{r['ratio']:.2f}x**.",
            "",
        ]
    lines += ["## Regression guard (against bench/baseline.json)", ""]
    if not guard:
        lines += ["No baseline metrics in common with this run.", ""]
    else:
        flagged = [g for g in guard if g["regressed"]]
        lines += [
            f"{len(flagged)} of {len(guard)} ratios more than {int(TOLERANCE * 100)}% worse than the baseline.",
            "",
            "| metric | baseline | now | factor (>1 better) | |",
            "|---|---:|---:|---:|---|",
        ]
        for g in guard:
            lines.append(
                f"| {g['metric']} | {g['baseline']} | {g['now']} | {g['factor']} | {'**REGRESSED**' if g['regressed'] else ''} |"
            )
        lines.append("")
    return "\n".join(lines)
