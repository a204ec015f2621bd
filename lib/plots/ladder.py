"""A difficulty ladder's figure: examples to a threshold against the rung's difficulty, one
line per model, its fitted trend carried to the paper's setting (lib.analysis.ladder)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.transforms import offset_copy
import numpy as np
import pandas as pd

from ..analysis.retrieval import label, lr_text
from .retrieval import style


def ladder_figure(ladder: pd.DataFrame, trends: pd.DataFrame, level: float, target: float, *,
                  xlabel: str, paper_note: str = "", suptitle: str = ""):
    """Median examples to `level` per (model, rung) with the min-max over its runs; a rung
    where some run never got there is drawn as an open marker at the budget (a lower
    bound), with how many did; the dashed line is the model's power-law trend, continued to
    `target` (the paper's setting, a vertical line)."""
    fig, ax = plt.subplots(figsize=(8.5, 6))
    key = f"{level:g}"
    ladder = ladder.reset_index(drop=True)  # one label per row: the spread below is keyed by it
    never = ladder[ladder[f"reached_{key}"].map(lambda s: s.split("/")[0] != s.split("/")[1])]
    # models that fell short on one rung share its budget point: spread them sideways, 10 points
    # apart (a triangle is 8 wide), whatever the axis' range
    spread = {i: 10 * (k - (len(g) - 1) / 2)
              for _, g in never.groupby("difficulty") for k, i in enumerate(g.index)}
    for (name, d_state), g in ladder.groupby(["name", "d_state"], sort=False):
        kw = style(name, d_state)
        model = label(name) + (f" state {d_state}" if name in ("mamba", "mamba2") and d_state != 16 else "")
        done = g[np.isfinite(g[f"median_{key}"])]
        lrs = ", ".join(sorted({lr_text(x) for x in g["lr"]}))
        if not done.empty:
            y = done[f"median_{key}"].to_numpy()
            err = [y - done[f"min_{key}"].to_numpy(), done[f"max_{key}"].to_numpy() - y]
            ax.errorbar(done["difficulty"], y, yerr=err, marker="o", ms=5, lw=1.8, capsize=3,
                        label=f"{model} (lr {lrs})", **kw)
        for i, r in g[g.index.isin(never.index)].iterrows():
            shifted = offset_copy(ax.transData, fig=fig, x=spread[i], y=0, units="points")
            ax.plot(r["difficulty"], r["budget"], marker="^", mfc="none", ms=8, color=kw["color"], ls="none",
                    transform=shifted, label=None if not done.empty else f"{model} (lr {lrs})")
            ax.update_datalim([(r["difficulty"], r["budget"])])  # a shifted artist leaves the limits alone
            ax.annotate(f"{r[f'reached_{key}']}", (r["difficulty"], r["budget"]), xycoords=shifted,
                        textcoords="offset points", xytext=(0, 7), fontsize=6.5, color=kw["color"], rotation=90,
                        ha="center", va="bottom")
        t = trends[(trends["name"] == name) & (trends["d_state"] == d_state)]
        if not t.empty and math.isfinite(t["exponent"].iloc[0]):
            xs = np.geomspace(done["difficulty"].min(), max(target, done["difficulty"].max()), 50)
            a = t["at_target"].iloc[0] / target ** t["exponent"].iloc[0]
            ax.plot(xs, a * xs ** t["exponent"].iloc[0], ls="--", lw=1, color=kw["color"], alpha=0.8)
    ax.axvline(target, color="0.3", lw=1, ls=":")
    ax.text(target, 0.02, f"paper's setting \n{paper_note} ", fontsize=7.5, color="0.3", va="bottom", ha="right",
            transform=ax.get_xaxis_transform())  # x in data, y in axes units; left of the line, where the axes end
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=f"training examples to {level:.0%} exact match",
           title=f"examples to {level:.0%} across the ladder (median, min-max over seeds;\n"
                 "open triangle: some run never reached it, drawn at the budget)")
    ax.title.set_fontsize(9)
    ax.grid(ls="--", alpha=0.4, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    else:
        ax.text(0.5, 0.5, "no runs on a rung", ha="center", va="center", transform=ax.transAxes, color="0.5")
    fig.suptitle(suptitle)
    return fig
