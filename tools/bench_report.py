"""Tables and plots from pytest-benchmark's JSON for the benchmark suite."""
from __future__ import annotations

import json
import platform
from pathlib import Path


def load(path: str | Path) -> dict:
    """{workload: {implementation: median seconds}} and the machine description."""
    data = json.loads(Path(path).read_text())
    results: dict[str, dict[str, float]] = {}
    titles: dict[str, str] = {}
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        workload, impl = info.get("workload"), info.get("implementation")
        if workload is None:
            continue
        results.setdefault(workload, {})[impl] = b["stats"]["median"]
        titles[workload] = b.get("group") or workload
    machine = data.get("machine_info", {})
    return {"results": results, "titles": titles, "machine": machine}


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


def _order(workload: str) -> tuple:
    """W2 before W10: by the workload's number, then by name."""
    digits = "".join(ch for ch in workload if ch.isdigit())
    return (int(digits) if digits else 0, workload)


def table(report: dict) -> str:
    """A markdown table: median time per implementation, and the ratio to hand-written C, or
    to JAX for a workload without a C peer (W8-W11)."""
    results = report["results"]
    impls = sorted({i for r in results.values() for i in r}, key=lambda i: (not i.startswith("scanaot"), i))
    lines = ["| workload | " + " | ".join(impls) + " |", "|---|" + "---|" * len(impls)]
    for workload in sorted(results, key=_order):
        row = results[workload]
        base, label = (row["c"], "C") if "c" in row else (row.get("jax"), "JAX")
        cells = []
        for impl in impls:
            if impl not in row:
                cells.append("")
                continue
            ratio = f" ({row[impl] / base:.2f}x {label})" if base else ""
            cells.append(_fmt(row[impl]) + ratio)
        lines.append(f"| {report['titles'][workload]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine(report: dict) -> str:
    m = report["machine"]
    cpu = m.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown CPU"
    return f"{cpu}, {m.get('cpu', {}).get('count', '?')} cores, Python {m.get('python_version', '?')}"


def plot(report: dict, path: str | Path) -> Path:
    """Bars per workload: each implementation's time relative to hand-written C (log scale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    workloads = sorted((w for w in results if "c" in results[w]), key=_order)
    impls = sorted({i for w in workloads for i in results[w]}, key=lambda i: (not i.startswith("scanaot"), i))
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(impls))
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for i, w in enumerate(workloads):
            if impl in results[w]:
                xs.append(i + k * width)
                ys.append(results[w][impl] / results[w]["c"])
        ax.bar(xs, ys, width=width, label=impl)
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(impls) - 1) / 2 for i in range(len(workloads))])
    ax.set_xticklabels([report["titles"][w] for w in workloads], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("median time / hand-written C (log)")
    ax.set_title(f"scanaot benchmark suite: {machine(report)}", fontsize=9)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
