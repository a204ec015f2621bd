"""Paper B's position retrieval at a toy scale that a CPU can train to the end: a handful
of symbols instead of 200, 2-layer models of width 64. Not a deliverable (the figures keep
the paper's 200 symbols); a check of whether the learning dynamics that F5 and F6
describe appear at all once models do learn: which target positions are solved first,
how sharply a model switches, and whether its position embeddings keep neighbours near.

    python -m lib.bench.position_toy [--symbols 8] [--steps 4000] [--json out.json]

Every model trains through `lib.training.train` with the B-position protocol (AdamW,
weight decay 0.01, cosine after 10% warm-up, bf16 only on a GPU) at batch 32 and lr 1e-3.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ..models import build_model
from ..models.zoo import paper_b
from ..analysis.position import edge_split, index_distance_correlation, knn_index_distance, random_knn_distance
from ..provenance import device_name, git_commit
from ..tasks import make_task
from ..training import TrainConfig, resolve_device, train

KNN = 2  # neighbours of the locality number: few symbols have few neighbours
MODELS = ["transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s"]


def run(name: str, symbols: int, steps: int, device, seed: int = 0) -> dict:
    task = make_task("position", num_symbols=symbols)
    model = build_model(paper_b(name, d_model=64, heads=4, depth=0.17), task.vocab_size, seq_len=task.seq_len,
                        seed=seed)
    cfg = TrainConfig(steps=steps, lr=1e-3, batch_size=32, warmup=0.1, schedule="cosine", weight_decay=0.01,
                      eval_every=max(50, steps // 30 // 50 * 50), eval_by="target_index")
    t0 = time.time()
    out = train(model, task, cfg, seed=seed, eval_batch=task.build(seed=1, n=1000), device=device, progress=False)
    curve = out["history"]["eval"]
    acc = np.array([[np.nan if a is None else a for a in e["exact_by_target_index"]] for e in curve])
    first, last, middle = edge_split(acc)  # with few symbols, the first and the last position
    edges = (first + last) / 2
    rows = model.embed.weight.detach().float().cpu().numpy()[task.snapshot_tokens()]
    knn = float(knn_index_distance(rows, (KNN,))[0])
    return {"model": name, "symbols": symbols, "steps": steps, "seed": seed, "wall_s": round(time.time() - t0, 1),
            "examples": [e["examples"] for e in curve], "exact_match": [round(e["exact_match"], 4) for e in curve],
            "edges": [round(float(x), 4) for x in edges], "middle": [round(float(x), 4) for x in middle],
            "final": out["final"], "knn": knn, "knn_random": random_knn_distance(symbols),
            "rank_correlation": index_distance_correlation(rows)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="8")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (the recorded run used 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = []
    for s in map(int, args.symbols.split(",")):
        for name in args.models.split(","):
            r = run(name, s, args.steps, device)
            rows.append(r)
            print(f"S={s} {name:17s} final {r['final']['exact_match']:.3f}  curve {r['exact_match'][::5]}  "
                  f"edges-middle at half-learned: "
                  f"{_gap_when_half(r):+.2f}  knn {r['knn']:.2f} (random {r['knn_random']:.2f}), "
                  f"rho {r['rank_correlation']:.2f}  {r['wall_s']:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name(device), "commit": git_commit(), "torch": torch.__version__,
                       "runs": rows}, f, indent=1)


def _gap_when_half(r: dict) -> float:
    """Edge minus middle accuracy at the first evaluation where overall exact match is between
    1.5x chance and 0.9 (NaN if none): positive when the edges are solved first."""
    chance = 1 / r["symbols"]
    for em, e, m in zip(r["exact_match"], r["edges"], r["middle"]):
        if 1.5 * chance <= em <= 0.9:
            return e - m
    return float("nan")


if __name__ == "__main__":
    main()
