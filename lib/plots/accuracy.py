"""Accuracy-vs-parameters plots in paper A's style: mean over runs with a
p10-p90 band, one colour per architecture (spec A.4)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import pandas as pd


ARCH_COLORS = {"TF-TF": "tab:blue", "TF-SSM": "tab:orange", "SSM-TF": "tab:green", "SSM-SSM": "tab:red",
               "TF-TF-TF": "tab:blue", "SSM-SSM-SSM": "tab:red", "SSM-SSM-TF": "tab:green",
               "SSM-TF-TF": "tab:purple"}


def summarize(df: pd.DataFrame, by: list[str], metric: str = "token_acc") -> pd.DataFrame:
    """Mean, 10th and 90th percentile of `metric` over seeds, per group."""
    g = df.groupby(by)[metric]
    out = pd.DataFrame({"mean": g.mean(), "p10": g.quantile(0.1), "p90": g.quantile(0.9), "runs": g.size()})
    return out.reset_index()


def accuracy_vs_setting(df: pd.DataFrame, x: str, ax=None, metric: str = "token_acc", hue: str = "arch",
                        reference: dict[str, float | None] | None = None, reference_note: str = "",
                        title: str | None = None, xlabel: str | None = None):
    """Mean over seeds with a p10-p90 band of `metric` against the column `x` (params, window,
    heads, d_state), one line per `hue`. `reference` {arch: level} draws each level as a dashed
    horizontal line in that arch's colour (a model the sweep does not vary); None levels are skipped."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    s = summarize(df, [hue, x], metric)
    order = [a for a in ARCH_COLORS if a in set(s[hue])] + sorted(set(s[hue]) - set(ARCH_COLORS))
    for name in order:
        part = s[s[hue] == name].sort_values(x)
        color = ARCH_COLORS.get(name)
        ax.plot(part[x], part["mean"], "o-", color=color, label=name, lw=2)
        ax.fill_between(part[x], part["p10"], part["p90"], color=color, alpha=0.15)
    for name, y in (reference or {}).items():
        if y is not None:
            ax.axhline(y, ls="--", lw=2, color=ARCH_COLORS.get(name, "0.4"),
                       label=f"{name} ({reference_note})" if reference_note else name)
    if x != "params":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set(xlabel=xlabel or x, ylabel="accuracy", ylim=(-0.02, 1.02),
           title=title or f"Average accuracy across {x}")
    ax.grid(ls="--", alpha=0.5)
    ax.legend()
    return ax


def accuracy_vs_params(df: pd.DataFrame, metric: str = "token_acc", hue: str = "arch", ax=None,
                       title: str = "Average accuracy across parameter counts"):
    return accuracy_vs_setting(df, "params", ax=ax, metric=metric, hue=hue, title=title, xlabel="parameters")


def converged_vs_fixed(converged: pd.DataFrame, fixed: pd.DataFrame | None, ax=None, title: str = ""):
    """Accuracy against parameters of runs trained to convergence (solid, with the p10-p90
    band), and the same architectures at the fixed 4,000-step protocol (dashed, means only)
    at the widths both trained: how much the longer training moved each curve."""
    ax = accuracy_vs_params(converged, ax=ax, title=title)
    if fixed is not None and not fixed.empty:
        same = fixed[fixed["arch"].isin(set(converged["arch"])) & fixed["d_model"].isin(set(converged["d_model"]))]
        for arch, part in summarize(same, ["arch", "params"]).groupby("arch"):
            ax.plot(part["params"], part["mean"], "x--", color=ARCH_COLORS.get(arch), lw=1.2, alpha=0.8,
                    label=f"{arch} (4,000 steps)")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    return ax


def level(df: pd.DataFrame, arch: str, metric: str = "token_acc", **where) -> float | None:
    """Mean `metric` of one arch's runs matching `where` (e.g. d_model=12): the height of a
    dashed reference line. None when no run matches."""
    rows = df[df["arch"] == arch]
    for col, value in where.items():
        rows = rows[rows[col] == value]
    return float(rows[metric].mean()) if len(rows) else None


def heads_and_state(heads: pd.DataFrame, state: pd.DataFrame, tf_tf: float | None, tf_tf_note: str,
                    suptitle: str = ""):
    """Paper A's Figs 12/16: (a) accuracy vs attention heads, SSM-SSM (no attention, so heads
    do nothing) as a dashed line at its mean over heads; (b) accuracy vs Mamba state dimension,
    TF-TF (no state) as a dashed line at `tf_tf`."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    accuracy_vs_setting(heads[heads["arch"] != "SSM-SSM"], "heads", ax=a,
                        reference={"SSM-SSM": level(heads, "SSM-SSM")}, reference_note="mean over heads",
                        title="(a) Average accuracy across number of heads", xlabel="attention heads")
    accuracy_vs_setting(state, "d_state", ax=b, reference={"TF-TF": tf_tf}, reference_note=tf_tf_note,
                        title="(b) Average accuracy across state dimensions", xlabel="Mamba state dimension")
    fig.suptitle(suptitle)
    return fig


def footer(prov: dict) -> str:
    """One line for a figure or table: the profile and how many runs it shows. The device,
    commits and wall times stay in the results' provenance.json: in a footer they would make
    the same results on another machine, or a rerun, give different files."""
    head = f"profile: {prov['profile']} · "
    if prov.get("runs") == 0:
        return head + "weights set by hand, no training"
    runs, done = prov.get("runs", "?"), prov.get("runs_finished", prov.get("runs"))
    count = f"{runs} runs" if done == runs else f"{done} of {runs} runs finished"
    return head + count + " · device, commit and times: provenance.json beside the results"


def save_figure(fig, fig_id: str, figures_dir: str | Path, prov: dict) -> list[Path]:
    """Stamp the provenance footer and write <id>.png and <id>.pdf (no timestamps inside,
    so the same results give the same files)."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    fig.text(0.01, 0.005, footer(prov), fontsize=7, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    paths = [figures_dir / f"{fig_id}.png", figures_dir / f"{fig_id}.pdf"]
    fig.savefig(paths[0], dpi=150, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return paths


def to_markdown(table: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A table as markdown: a column of text shows as written ("3e-04" is a learning rate,
    not 0.000), a missing value as "–", not nan."""
    # any non-numeric column, object or pandas' own string dtype (the default from pandas 3)
    text_columns = [i for i, c in enumerate(table.columns) if not pd.api.types.is_numeric_dtype(table[c])]
    shown = table.astype(object).where(table.notna(), None)
    return shown.to_markdown(index=False, floatfmt=floatfmt, disable_numparse=text_columns or False,
                             missingval="–")


def save_table(table: pd.DataFrame, table_id: str, figures_dir: str | Path, prov: dict,
               floatfmt: str = ".3f") -> list[Path]:
    """<id>.csv and <id>.md; the markdown says which profile made it."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = [figures_dir / f"{table_id}.csv", figures_dir / f"{table_id}.md"]
    table.to_csv(paths[0], index=False)
    markdown = to_markdown(table, floatfmt)
    paths[1].write_text(f"# {table_id}\n\n{markdown}\n\n"
                        f"_{footer(prov)}_\n")
    return paths


def table_at(df: pd.DataFrame, rows: dict[int, str], metric: str = "token_acc", by: str = "d_model",
             hue: str = "arch") -> pd.DataFrame:
    """Long table of mean/p10/p90 accuracy at chosen widths, each labelled (e.g. 8 -> '~2k'),
    for the widths present in the results."""
    s = summarize(df, [by, hue, "params"], metric)
    s = s[s[by].isin(rows)].copy()
    s.insert(0, "row", s[by].map(rows))
    order = {a: i for i, a in enumerate(ARCH_COLORS)}
    return s.sort_values([by, hue], key=lambda c: c.map(order) if c.name == hue else c).reset_index(drop=True)


def wide(table: pd.DataFrame, hue: str = "arch", by: str = "d_model") -> pd.DataFrame:
    """The long table as the paper prints it: one row per width, 'acc (params)' per architecture."""
    cell = table.assign(cell=[f"{m:.3f} ({p:,})" for m, p in zip(table["mean"], table["params"])])
    out = cell.pivot(index=["row", by], columns=hue, values="cell").reset_index()
    cols = ["row", by] + [a for a in ARCH_COLORS if a in out.columns]
    return out[cols].sort_values(by).reset_index(drop=True)


def params_per_width(df: pd.DataFrame) -> str:
    """Parameter count of each architecture at each width, as text."""
    return df.groupby(["d_model", "arch"])["params"].first().unstack().to_string()
