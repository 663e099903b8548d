#!/usr/bin/env python3
"""Collects the benchmark results and draws the LPM and churn chart (issue 5).

    python3 benches/chart.py [CRITERION_DIR]

CRITERION_DIR is criterion's output (default: $CARGO_TARGET_DIR/criterion, else
target/criterion). Writes:

- benches/results/criterion.csv: group, implementation, median time per iteration (ns),
  elements per iteration and the rate per second, one line per criterion benchmark;
- benches/results/lpm_churn.png: longest-prefix-match rates (IPv4 inside / uniform, IPv6) and
  the churn workload (benches/results/churn.csv, written by `cargo bench --bench churn`);
- benches/results/churn_scaling.png, when benches/results/churn-scaling.csv exists (written by
  `RTMGR_CHURN_READERS=1,2,4,8,16 cargo bench --bench churn`): readers' lookups/s and the
  writer's updates/s against the number of reader threads, with and without the writer (and,
  for rtmgr, beside a control writer that reads unrelated memory).

The CSV needs only the standard library; the chart needs matplotlib (`pip install matplotlib`).
"""

import csv
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def criterion_dir():
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    target = os.environ.get("CARGO_TARGET_DIR", str(HERE.parent / "target"))
    return Path(target) / "criterion"


def collect(root):
    rows = []
    for bench in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        median_ns = est["median"]["point_estimate"]
        elements = (meta.get("throughput") or {}).get("Elements")
        rate = elements / median_ns * 1e9 if elements else 1e9 / median_ns
        rows.append(
            {
                "group": meta["group_id"],
                "implementation": meta["function_id"],
                "median_ns": f"{median_ns:.1f}",
                "elements": elements or 1,
                "rate_per_s": f"{rate:.0f}",
            }
        )
    return rows


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def read_csv(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def bars(ax, labels, values, title, unit, highlight="rtmgr"):
    ys = range(len(labels))
    colors = ["#d62728" if l.startswith(highlight) else "#1f77b4" for l in labels]
    ax.barh(ys, values, color=colors)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    top = max(values) if values else 1
    for y, v in zip(ys, values):
        ax.text(v * 1.05, y, f"{v:.3g}", va="center", fontsize=7)
    ax.set_xscale("log")
    bottom = min(v for v in values if v > 0) if any(v > 0 for v in values) else 0.001
    ax.set_xlim(bottom / 2, top * 3)


def chart(rows, churn, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lpm_groups = [
        ("ipv4_lpm_inside", "IPv4 LPM, 1 thread, addresses inside prefixes"),
        ("ipv4_lpm_uniform", "IPv4 LPM, 1 thread, uniform addresses"),
        ("ipv6_lpm_inside", "IPv6 LPM, 1 thread, addresses inside prefixes"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, (group, title) in zip(axes.flat, lpm_groups):
        sel = sorted((r for r in rows if r["group"] == group), key=lambda r: -float(r["rate_per_s"]))
        bars(ax, [r["implementation"] for r in sel], [float(r["rate_per_s"]) / 1e6 for r in sel], title, "M lookups/s (median, log scale)")
    ax = axes.flat[3]
    # The control writer reads unrelated memory: not a churn case.
    sel = [r for r in churn if r["churn"] == "true" and "control" not in r["implementation"]]
    sel.sort(key=lambda r: (-float(r["lookups_per_s"])))
    labels = [
        f"{r['implementation']}, {r['readers']} rdr, writer {float(r['updates_per_s']) / 1e3:.0f}k upd/s"
        for r in sel
    ]
    bars(ax, labels, [float(r["lookups_per_s"]) / 1e6 for r in sel], "IPv4 LPM under churn: readers' lookups/s (1 writer)", "M lookups/s, all readers (median, log scale)")
    fig.suptitle("rtmgr vs peers, real tables (565k IPv4 / 168k IPv6 prefixes); 2-core shared machine, noisy", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def scaling_chart(rows, out, machine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["implementation"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for i, name in enumerate(names):
        color = f"C{i}"
        for churn, style in (("false", ":"), ("true", "-")):
            sel = sorted((r for r in rows if r["implementation"] == name and r["churn"] == churn), key=lambda r: int(r["readers"]))
            xs = [int(r["readers"]) for r in sel]
            if not sel:
                continue
            label = name if "control" in name else f"{name}, {'1 writer' if churn == 'true' else 'no writer'}"
            left.plot(xs, [float(r["lookups_per_s"]) / 1e6 for r in sel], style, marker="o", color=color, label=label)
            # A control writer's "updates" are memory reads, not table updates.
            if churn == "true" and "control" not in name:
                right.plot(xs, [float(r["updates_per_s"]) / 1e3 for r in sel], "-", marker="o", color=color, label=name)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(r) for r in sorted({r["readers"] for r in rows}, key=int)])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("reader threads", fontsize=9)
        ax.grid(True, alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("M lookups/s, all readers (median of 3, log scale)", fontsize=9)
    left.set_title("IPv4 LPM, addresses inside prefixes: readers", fontsize=10)
    left.legend(fontsize=7, loc="center right")
    right.set_yscale("log")
    right.set_ylabel("k updates/s (median of 3, log scale)", fontsize=9)
    right.set_title("the writer beside them (withdraw + re-announce)", fontsize=10)
    right.legend(fontsize=7)
    fig.suptitle(f"Scaling under churn, real IPv4 table (565k prefixes); {machine}", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main():
    RESULTS.mkdir(exist_ok=True)
    root = criterion_dir()
    rows = collect(root) if root.exists() else []
    if rows:
        write_csv(RESULTS / "criterion.csv", rows)
        print(f"wrote {RESULTS / 'criterion.csv'} ({len(rows)} benchmarks from {root})")
    else:
        rows = read_csv(RESULTS / "criterion.csv")
    churn = read_csv(RESULTS / "churn.csv") or read_csv(RESULTS / "churn-quick.csv")
    chart(rows, churn, RESULTS / "lpm_churn.png")
    scaling = read_csv(RESULTS / "churn-scaling.csv")
    if scaling:
        machine = os.environ.get("RTMGR_SCALING_MACHINE", "16-core Intel Xeon VM (KVM), 1 writer thread beside the readers")
        scaling_chart(scaling, RESULTS / "churn_scaling.png", machine)


if __name__ == "__main__":
    main()
