"""Short paper-B training probes on one GPU: does a family leave the loss plateau at a
given learning rate, training length and scan path? One process trains its probes one
after another (start several processes to share a GPU); each finished probe is written
at once as JSON, and a rerun skips what is written.

    python -m lib.bench.probe_b --out DIR --probe hybridI_1m2:lr=3e-4 \\
        --probe transformer:lr=1e-3,min_len=10,max_len=20 [--steps 4000]

A probe is `family:key=value,...`; keys: lr, seed, min_len, max_len (the n-gram task's
training lengths; validation at max_len), kernels (auto | torch), task (ngram | position),
num_symbols. Everything else is the `gpu` profile's paper-B setting: width 256, half
depth, batch 64, bf16, cosine with 10% warm-up, AdamW with weight decay 0.01 under the
Trainer's rule, clip 1, evaluation every 250 steps on 1,000 examples, early stop at 95%
exact match.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from ..models import build_model, paper_b
from ..models.zoo import B_FAMILIES
from ..provenance import device_name, git_commit
from ..tasks import eval_set, make_task
from ..training import TrainConfig, resolve_device, train

KEYS = {"lr": float, "seed": int, "min_len": int, "max_len": int, "kernels": str, "task": str, "num_symbols": int}


def parse_probe(text: str) -> tuple[str, dict]:
    family, _, rest = text.partition(":")
    if family not in B_FAMILIES:
        raise SystemExit(f"probe {text!r}: unknown family {family!r}; families are {', '.join(B_FAMILIES)}")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS:
            raise SystemExit(f"probe {text!r}: unknown key {key!r}; keys are {', '.join(KEYS)}")
        try:
            settings[key] = KEYS[key](value)
        except ValueError:
            raise SystemExit(f"probe {text!r}: {key}={value!r} is not a {KEYS[key].__name__}") from None
    return family, settings


def probe_name(family: str, s: dict) -> str:
    return family + "".join(f"_{k}{v}" for k, v in sorted(s.items()))


def run_probe(family: str, s: dict, steps: int, eval_every: int, data_dir: Path, device) -> dict:
    if s.get("task", "ngram") == "position":
        task = make_task("position", num_symbols=s.get("num_symbols", 200), prefix=False)
        eval_task = task
    else:
        lo, hi = s.get("min_len", 50), s.get("max_len", 100)
        common = dict(num_symbols=s.get("num_symbols", 30), n=2, k=3, prefix=False)
        task = make_task("ngram", min_len=lo, max_len=hi, **common)
        eval_task = make_task("ngram", min_len=hi, max_len=hi, **common)
    cfg = paper_b(family, d_model=256, heads=4, depth=0.5, kernels=s.get("kernels", "auto"))
    seed = s.get("seed", 0)
    model = build_model(cfg, task.vocab_size, seed=seed)
    train_cfg = TrainConfig(steps=steps, batch_size=64, lr=s.get("lr", 3e-4), weight_decay=0.01, decay="trainer",
                            warmup=0.1, schedule="cosine", clip=1.0, amp="bf16", eval_every=eval_every,
                            early_stop=0.95, early_stop_metric="exact_match")
    t0 = time.time()
    res = train(model, task, train_cfg, seed=seed, eval_batch=eval_set(eval_task, 1000, 1, data_dir),
                device=device, progress=False)
    curve = [{k: e[k] for k in ("examples", "exact_match", "loss") if k in e} for e in res["history"]["eval"]]
    reached = next((e["examples"] for e in curve if e["exact_match"] >= 0.95), None)
    return {"family": family, "settings": s, "params_non_embedding": model.num_params(non_embedding=True),
            "steps": res["steps"], "examples_to_95": reached, "best_exact_match": max(
                (e["exact_match"] for e in curve), default=None), "eval": curve,
            "train_loss_every_50": res["history"]["train_loss"][::50], "wall_s": round(time.time() - t0, 1),
            "device": device_name(resolve_device(device)), "commit": git_commit(), "train": vars(train_cfg)}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.bench.probe_b", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for one JSON per probe")
    ap.add_argument("--probe", action="append", required=True, help="family:key=value,... (repeatable)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    probes = [parse_probe(p) for p in args.probe]  # all checked before any training
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(os.environ.get("COMPANION_WORKDIR", ".")) / "data" / "eval"
    for family, s in probes:
        path = out / f"{probe_name(family, s)}.json"
        if path.exists():
            continue
        rec = run_probe(family, s, args.steps, args.eval_every, data_dir, args.device)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1, default=str))
        tmp.replace(path)
        print(f"{path.name}: best {rec['best_exact_match']}, 95% at {rec['examples_to_95']}, "
              f"{rec['steps']} steps, {rec['wall_s']} s", flush=True)


if __name__ == "__main__":
    main()
