"""The scale benchmark's outputs: Markdown tables (an operation per row, a size per column, the ratio of the largest
size to the smallest) and a plot of latency and server CPU per request against the number of images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

GOAL_RATIO = 1.5
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")
LINE_STYLES = ("-", "--")
"""Fourteen operations on one axis: colour, marker and line style tell them apart."""


def _size_label(images: int) -> str:
    return f"{images:,}"


def _ratio(first: float, last: float) -> str:
    if first <= 0:
        return "–"
    ratio = last / first
    return f"{ratio:.2f}×" + (" ✓" if ratio <= GOAL_RATIO else " ✗")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def backend_tables(backend: str, stages: list[dict[str, Any]]) -> str:
    """Per-request latency (p50) and server CPU per request, then full listings, fill rate and bytes per image."""
    if not stages:
        return f"### {backend}\n\n(no size completed)\n"
    sizes = [stage["images"] for stage in stages]
    header = ["operation", *(_size_label(s) for s in sizes), f"{_size_label(sizes[-1])} ÷ {_size_label(sizes[0])}"]
    names = list(stages[0]["operations"])
    parts = [f"### {backend}"]
    for title, key in (("p50 latency, ms (client side)", "p50_ms"), ("server CPU per request, ms", "server_cpu_ms")):
        rows = []
        for name in names:
            values = [stage["operations"].get(name, {}).get(key) for stage in stages]
            cells = [f"{v:.2f}" if v is not None else "–" for v in values]
            known = [v for v in values if v is not None]
            rows.append([name, *cells, _ratio(known[0], known[-1]) if len(known) > 1 else "–"])
        parts += [f"{title}:", _table(header, rows)]
    rows = []
    for listing in stages[0]["listings"]:
        name = listing["name"]
        cells_time, cells_cpu = [], []
        for stage in stages:
            found = next((item for item in stage["listings"] if item["name"] == name), None)
            if found is None:
                cells_time.append("–")
                cells_cpu.append("–")
                continue
            cells_time.append(
                f"{found['seconds']:.2f} s / {found['items']:,} ({found['ms_per_1000_items']:.0f} ms/1000)"
            )
            per_1000 = found["server_cpu_seconds"] * 1e6 / found["items"] if found["items"] else 0.0
            cells_cpu.append(f"{per_1000:.0f}")
        rows.append([f"{name}: time / items (per 1000)", *cells_time, ""])
        rows.append([f"{name}: server CPU ms per 1000 items", *cells_cpu, ""])
    parts += ["Full listing of the large repository (pages of 1000):", _table(header, rows)]
    rows = [
        ["images in the large repository", *(f"{s['big_repository_images']:,}" for s in stages), ""],
        ["repositories", *(f"{s['repositories']:,}" for s in stages), ""],
        ["fill rate, images/s (this step)", *(f"{s['fill']['rate']:.0f}" for s in stages), ""],
        ["database bytes per image", *(f"{s['bytes_per_image']:.0f}" for s in stages), ""],
        [
            "bytes per image added since the previous size",
            *(f"{m:.0f}" if (m := s.get("marginal_bytes_per_image")) is not None else "–" for s in stages),
            "",
        ],
    ]
    parts += ["The registry at each size:", _table(header, rows)]
    return "\n\n".join(parts) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency (p50) and server CPU per request against images (log x): a column per back end, a line per
    operation. False when matplotlib is not available."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    backends = [(name, data["stages"]) for name, data in results["backends"].items() if data["stages"]]
    if not backends:
        return False
    figure, axes = plt.subplots(2, len(backends), figsize=(7 * len(backends), 9), squeeze=False)
    for column, (backend, stages) in enumerate(backends):
        sizes = [stage["images"] for stage in stages]
        for row, (key, label) in enumerate(
            (("p50_ms", "p50 latency (ms)"), ("server_cpu_ms", "server CPU per request (ms)"))
        ):
            axis = axes[row][column]
            for index, name in enumerate(stages[0]["operations"]):
                values = [stage["operations"].get(name, {}).get(key, float("nan")) for stage in stages]
                # matplotlib leaves labels that start with "_" out of the legend (`_catalog page`).
                axis.plot(
                    sizes,
                    values,
                    color=plt.get_cmap("tab20")(index % 20),
                    marker=MARKERS[index % len(MARKERS)],
                    linestyle=LINE_STYLES[index // 10 % len(LINE_STYLES)],
                    label=name.lstrip("_") if name.startswith("_") else name,
                )
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("images in the registry")
            axis.set_ylabel(label)
            axis.set_title(f"{backend}: {label}")
            axis.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> int:
    """Tables and plot again from a run's JSON: ``python bench/scale_report.py bench/results/scale-….json
    [--plot PNG]``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("json", type=Path)
    parser.add_argument("--plot", type=Path, help="write the PNG here")
    args = parser.parse_args(argv)
    results = json.loads(args.json.read_text())
    for backend, data in results["backends"].items():
        if data["stages"]:
            print(backend_tables(backend, data["stages"]) + "\n")
    if args.plot is not None and not plot(results, args.plot):
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
