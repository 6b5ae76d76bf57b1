"""PNG plots of a sweep (matplotlib, headless ``Agg`` backend).

* ``pareto.png``: resource (LUTs on an FPGA, NAND2 equivalents for ``generic``) against
  effective GMAC/s on the workload, one panel per target; points that do not fit are
  hollow, the Pareto front is joined by a line.
* ``utilization.png``: utilization of the array per workload item (GEMM shape or
  layer), one line per fitting configuration.
* ``roofline.png``: effective GMAC/s of every workload item against its operational
  intensity (useful MACs per byte on the command and result streams), with each
  configuration's roofs: compute (rows x cols MACs per cycle), the on-chip stream
  (``bus_bytes`` per cycle) and the board's UART (baud / 10 bytes per second); hollow
  markers: end to end, the UART transfer included.
"""

from __future__ import annotations

import io

from .sweep import pareto_front, resource_of, speed_of

__all__ = ["render_plots", "PLOTS"]

PLOTS = ("pareto.png", "utilization.png", "roofline.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_plots(points: list[dict], title: str) -> dict[str, bytes]:
    """`PLOTS` as PNG bytes by file name (the caller writes them)."""
    plt = _pyplot()
    pngs = {}
    for name, draw in zip(PLOTS, (_pareto, _utilization, _roofline), strict=True):
        fig = draw(plt, points, title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        pngs[name] = buf.getvalue()
    return pngs


def _pareto(plt, points, title):
    valid = [p for p in points if p["valid"] and resource_of(p) and speed_of(p)]
    targets = sorted({p["target"] for p in valid}) or ["(none)"]
    front = set(pareto_front(points))
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        mine = [p for p in valid if p["target"] == target]
        for p in mine:
            r, s = resource_of(p)[1], speed_of(p)[1]
            fits = p.get("fits") is not False
            ax.scatter(
                [r], [s], s=40, facecolors="C0" if fits else "none", edgecolors="C0", zorder=3
            )
            ax.annotate(
                p["name"].split("-")[0] + f" b{p['bus_bytes']}",
                (r, s),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        best = sorted((p for p in mine if p["index"] in front), key=lambda p: resource_of(p)[1])
        if best:
            ax.plot(
                [resource_of(p)[1] for p in best],
                [speed_of(p)[1] for p in best],
                "C3-",
                label="Pareto front",
                zorder=2,
            )
            ax.legend(loc="lower right", fontsize=8)
            total = best[0].get("luts_total")
            if total:
                ax.axvline(total, color="grey", ls=":", lw=1)
                ax.text(total, ax.get_ylim()[1], " device", fontsize=7, va="top", color="grey")
        if mine:
            ax.set_xlabel(resource_of(mine[0])[0])
            ax.set_ylabel(speed_of(mine[0])[0])
        ax.set_title(f"{target}: resources vs speed (hollow: does not fit)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _fitting(points):
    return [p for p in points if p["valid"] and p.get("fits") is not False and p["workload"]]


def _utilization(plt, points, title):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = _fitting(points)
    names = list(dict.fromkeys(w["name"] for p in rows for w in p["workload"]))
    for p in rows:
        by_name = {w["name"]: w["utilization"] for w in p["workload"]}
        ax.plot(range(len(names)), [by_name.get(n) for n in names], "o-", label=p["name"])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("utilization (useful MACs / peak)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("workload (GEMM M x K x N, or layer)")
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _roofline(plt, points, title):
    fig, ax = plt.subplots(figsize=(8, 5))
    rows = [p for p in _fitting(points) if p.get("clock_mhz")]
    xs = [w["macs_per_stream_byte"] for p in rows for w in p["workload"]]
    lo, hi = (min(xs) / 2, max(xs) * 2) if xs else (0.1, 100)
    grid = [lo * (hi / lo) ** (i / 50) for i in range(51)]
    for i, p in enumerate(rows):
        colour = f"C{i % 10}"
        f_hz = p["clock_mhz"] * 1e6
        peak = p["peak_macs_per_cycle"] * f_hz / 1e9
        stream = p["bus_bytes"] * f_hz / 1e9
        ax.plot(grid, [min(peak, x * stream) for x in grid], color=colour, lw=1)
        if p.get("baud"):
            uart = p["baud"] / 10 / 1e9
            ax.plot(grid, [min(peak, x * uart) for x in grid], color=colour, lw=1, ls="--")
        ax.scatter(
            [w["macs_per_stream_byte"] for w in p["workload"]],
            [w["gmacs"] for w in p["workload"]],
            color=colour,
            label=f"{p['name']} @ {p['clock_mhz']:g} MHz",
            zorder=3,
        )
        ends = [w for w in p["workload"] if w.get("gmacs_end_to_end")]
        ax.scatter(
            [w["macs_per_stream_byte"] for w in ends],
            [w["gmacs_end_to_end"] for w in ends],
            facecolors="none",
            edgecolors=colour,
            zorder=3,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (useful MACs per command/result stream byte)")
    ax.set_ylabel("GMAC/s")
    ax.grid(alpha=0.3, which="both")
    if rows:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(
        f"{title}\nroofs: compute and stream (solid), UART (dashed); hollow: end to end over UART",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
