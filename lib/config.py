"""params.yaml -> the list of runs of an experiment at a profile.

Everything is checked here, before any training starts: the profile, the
experiment, the task and model settings of every grid point.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .models import ModelConfig, ModelError, micro, mini, paper_b
from .tasks import Task, make_task
from .training import TrainConfig, final_tests

PROFILES = ("quick", "gpu", "paper")
ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    pass


def workdir() -> Path:
    """Where stages write data/ and figures/: the repository, unless COMPANION_WORKDIR
    points elsewhere (the notebook tests run the pipeline in a temporary folder)."""
    return Path(os.environ.get("COMPANION_WORKDIR", ROOT))


def data_dir() -> Path:
    return workdir() / "data" / "eval"


def results_dir(profile: str, experiment: str) -> Path:
    return workdir() / "data" / "results" / profile / experiment


def figures_dir(profile: str) -> Path:
    """figures/<profile>/: each profile's figures and tables side by side, so rendering the
    quick profile never overwrites the gpu one committed from a real run."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
    return workdir() / "figures" / profile


def load_params(path: str | Path | None = None) -> dict:
    with open(path or ROOT / "params.yaml") as f:
        return yaml.safe_load(f)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def experiment_spec(name: str, profile: str, params: dict | None = None) -> dict:
    """The experiment's settings with its profile's overrides applied."""
    params = params or load_params()
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
    exps = params.get("experiments", {})
    if name not in exps:
        raise ConfigError(f"unknown experiment {name!r}; experiments in params.yaml: {', '.join(exps)}")
    spec = {k: v for k, v in exps[name].items() if k != "profiles"}
    spec = deep_merge(spec, (exps[name].get("profiles") or {}).get(profile) or {})
    spec.update(name=name, profile=profile)
    return spec


def model_config(spec: dict) -> ModelConfig:
    """{'family': 'micro', 'arch': 'SSM-TF', 'd_model': 12, ...} -> ModelConfig."""
    spec = dict(spec)
    family = spec.pop("family", None)
    try:
        if family == "micro":
            return micro(spec.pop("arch"), **spec)
        if family == "paper_b":
            return paper_b(spec.pop("name"), **spec)
        if family == "mini":
            return mini(spec.pop("arch"), **spec)
    except TypeError as e:  # an unknown keyword
        raise ModelError(f"bad model settings {spec}: {e}") from None
    except KeyError as e:
        raise ModelError(f"model family {family!r} needs the setting {e}") from None
    raise ModelError(f"unknown model family {family!r}; use 'micro' or 'mini' (paper A) or 'paper_b'")


@dataclass
class Run:
    """One training run: a grid point and a seed."""

    experiment: str
    task: dict
    eval_task: dict
    eval: dict
    model: dict
    train: dict
    lr: dict
    seed: int
    labels: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)  # evaluations of the trained model (lib.training.final_tests)

    @property
    def id(self) -> str:
        # `tests` enters the id only when set, so runs without any keep their ids
        blob = json.dumps({k: v for k, v in self.__dict__.items()
                           if k != "labels" and not (k == "tests" and not v)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def make_task(self) -> Task:
        return make_task(**self.task)

    def make_eval_task(self) -> Task:
        return make_task(**self.eval_task)

    def model_config(self) -> ModelConfig:
        return model_config(self.model)


def expand_runs(spec: dict) -> list[Run]:
    """Every grid point x seed, validated up front. A grid axis names a model setting, or
    a task setting (`task.<name>`) or a training setting (`train.<name>`, e.g. `train.lr`)."""
    grid = spec.get("grid") or {}
    keys = list(grid)
    runs = []
    eval_cfg = dict(spec.get("eval") or {})
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        task, model, train = dict(spec["task"]), dict(spec["model"]), dict(spec.get("train") or {})
        for k, v in point.items():
            if k.startswith("task."):
                task[k[5:]] = v
            elif k.startswith("train."):
                train[k[6:]] = v
            else:
                model[k] = v
        eval_task = dict(task, **{k: v for k, v in eval_cfg.items() if k not in ("n", "seed")})
        for seed in range(int(spec.get("seeds", 1))):
            runs.append(Run(spec["name"], task, eval_task, {"n": eval_cfg.get("n", 1000),
                                                            "seed": eval_cfg.get("seed", 1)},
                            model, train, dict(spec.get("lr") or {}), seed, labels=dict(point),
                            tests=dict(spec.get("tests") or {})))
    check_runs(runs)
    return runs


def check_runs(runs: list[Run]) -> None:
    """Build every task and model config once (cheaply) so bad input fails before work starts."""
    seen = set()
    for r in runs:
        key = json.dumps([r.task, r.eval_task, r.model], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        task, eval_task = r.make_task(), r.make_eval_task()
        try:
            TrainConfig(**r.train).validate()
        except TypeError as e:  # an unknown setting
            raise ConfigError(f"{r.experiment}: bad train settings {r.train}: {e}") from None
        final_tests.check(r.tests, task)
        cfg = r.model_config()
        cfg.validate(seq_len=max(task.seq_len, eval_task.seq_len))
        if eval_task.vocab_size != task.vocab_size:
            raise ConfigError(f"{r.experiment}: the eval task changes the vocabulary")


def describe(name: str, profile: str) -> str:
    """An experiment's settings at a profile, in a few lines (for the notebooks)."""
    s = experiment_spec(name, profile)
    return (f"{name}: task {s['task']}\n  model {s['model']}\n  grid {s['grid']}\n"
            f"  {s['seeds']} seeds, {s['train']['steps']} steps, lr from {s['lr']['grid']}, "
            f"eval on {s['eval']['n']} held-out sequences")
