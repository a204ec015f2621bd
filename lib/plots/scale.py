"""Paper A at larger scale: the drawing of Fig 8 (length generalization); its numbers and
Table 1's are lib.analysis.scale's.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis.scale import ARCHS, TRAIN_LENGTHS, length_summary

ARCH_STYLE = {"T_rope": ("tab:purple", "T_rope (Transformer, RoPE)"), "mamba": ("tab:green", "mamba (SSM)"),
              "hybrid": ("tab:blue", "hybrid (Mamba, attention alternating)")}


def length_figure(curves: pd.DataFrame, suptitle: str = ""):
    """A-fig8: token accuracy against example length, mean over runs with a min-max band;
    the shaded strip is the training lengths."""
    s = length_summary(curves)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.axvspan(*TRAIN_LENGTHS, color="0.9", label="training lengths")
    for arch in ARCHS:
        a = s[s["arch"] == arch].sort_values("length")
        if a.empty:
            print(f"note: A-fig8: no runs of {arch}")
            continue
        color, text = ARCH_STYLE[arch]
        ax.plot(a["length"], a["mean"], color=color, lw=2, marker="o", ms=3,
                label=f"{text} ({int(a['runs'].max())} runs)")
        ax.fill_between(a["length"], a["min"], a["max"], color=color, alpha=0.15, lw=0)
    ax.set(xlabel="evaluation length (tokens)", ylabel="token (character) accuracy", ylim=(-0.02, 1.02),
           title="length generalization, associative recall with decoding")
    ax.grid(ls="--", alpha=0.4)
    ax.legend(fontsize=8, frameon=False)
    fig.suptitle(suptitle)
    return fig


