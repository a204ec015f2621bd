"""params.yaml (the profile) + experiments.yaml (every experiment's protocol) -> the list of
runs of an experiment at a profile.

Everything is checked here, before any training starts: the file (no key given
twice), every experiment and profile override against a schema (no unknown key,
no setting of the wrong kind), then the task, model and training settings of
every grid point. A mistake is one ConfigError naming the experiment and the key.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import inspect
import itertools
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .models import ModelConfig, ModelError, micro, mini, paper_b
from .tasks import TASKS, Task, TaskError, make_task
from .training import TrainConfig, final_tests

PROFILES = ("quick", "gpu", "paper")
ROOT = Path(__file__).resolve().parents[1]
# beside params.yaml: the experiments, apart from what a user varies (`profile`), so that
# `dvc exp show` lists a handful of params rather than every experiment's every setting
EXPERIMENTS_FILE = "experiments.yaml"


class ConfigError(ValueError):
    """A mistake in params.yaml, experiments.yaml or the arguments of a sweep: reported in one line."""

    def _render_traceback_(self) -> list[str]:
        # IPython (the notebooks, papermill) shows this instead of a traceback: the
        # mistake is the user's, the code's frames would only hide it
        return [f"ConfigError: {self}"]


def workdir() -> Path:
    """Where stages write data/ and figures/: the repository, unless COMPANION_WORKDIR
    points elsewhere (the notebook tests run the pipeline in a temporary folder)."""
    return Path(os.environ.get("COMPANION_WORKDIR", ROOT))


def data_dir() -> Path:
    return workdir() / "data" / "eval"


def results_dir(profile: str, experiment: str) -> Path:
    return workdir() / "data" / "results" / profile / experiment


def settings_dir() -> Path:
    """data/settings/: one JSON per experiment, its entry of experiments.yaml (write_settings)."""
    return workdir() / "data" / "settings"


def figures_dir(profile: str) -> Path:
    """figures/<profile>/: each profile's figures and tables side by side, so rendering the
    quick profile never overwrites the gpu one committed from a real run."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
    return workdir() / "figures" / profile


def load_params(path: str | Path | None = None) -> dict:
    """{profile, experiments}: params.yaml and experiments.yaml beside it, checked
    (check_params) before anything reads them. A params file with `experiments` of its own
    and no experiments.yaml beside it is read alone (the tests' one-file settings)."""
    path = Path(path or ROOT / "params.yaml")
    params, experiments_path = _read_yaml(path), path.with_name(EXPERIMENTS_FILE)
    if experiments_path.exists():
        params = _join(params, path, _read_yaml(experiments_path), experiments_path)
    else:
        experiments_path = path  # one file holds both
    check_params(params, path, experiments_path)
    return params


def _read_yaml(path: Path):
    loader = yaml.SafeLoader(path.read_text())
    try:
        node = loader.get_single_node()
        _refuse_duplicate_keys(node, path)
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    finally:
        loader.dispose()


def _join(params, path: Path, experiments, experiments_path: Path) -> dict:
    """params.yaml's keys and experiments.yaml's, each file holding only its own: an
    `experiments` left in params.yaml would silently shadow experiments.yaml's. (Anchors,
    `_name` entries, serve their own file only.)"""
    _check_top_keys(params, path, ("profile",))
    _check_top_keys(experiments, experiments_path, ("experiments",))
    return {**params, **experiments}


def _check_top_keys(doc, path: Path, allowed: tuple[str, ...]) -> None:
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with {' and '.join(f'`{k}`' for k in allowed)}")
    for key in doc:
        if key in TOP_KEYS and key not in allowed:
            raise ConfigError(f"{path}: `{key}` belongs in {'params.yaml' if key == 'profile' else EXPERIMENTS_FILE}")
        if key not in allowed and not str(key).startswith("_"):
            raise ConfigError(f"{path}: unknown key {key!r}{_near(key, allowed)}; allowed: {', '.join(allowed)}, "
                              "and names starting with _ for YAML anchors")


def write_settings(params: dict | None = None) -> list[Path]:
    """data/settings/<experiment>.json: each experiment's entry (anchors merged, every
    profile). The stages that train or describe an experiment depend on its file rather than
    on its params: an edit reruns exactly those stages, and `dvc exp show` is spared a column
    per setting. Nothing reads these files back: the library reads experiments.yaml."""
    params = params or load_params()
    folder = settings_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, entry in params["experiments"].items():
        paths.append(folder / f"{name}.json")
        paths[-1].write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    return paths


def _refuse_duplicate_keys(node, path: Path, seen: set | None = None) -> None:
    """YAML keeps the last of two equal keys; a second `A-fig4:` where `A-fig5:` was meant
    would train A-fig5's models into A-fig4's folder. Checked on the parsed nodes, before
    `<<` merges (whose keys an entry may override) are applied."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias: its anchor was checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines = {}
        for key, value in node.value:
            if key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if key.value in lines:
                    raise ConfigError(f"{path}, line {line}: the key {key.value!r} is given twice in one "
                                      f"mapping (first on line {lines[key.value]}); YAML would keep only the last")
                lines[key.value] = line
            _refuse_duplicate_keys(value, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path, seen)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def experiment_spec(name: str, profile: str, params: dict | None = None) -> dict:
    """The experiment's settings with its profile's overrides applied."""
    params = params or load_params()
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}{_near(profile, PROFILES)}; profiles are {', '.join(PROFILES)}")
    exps = params.get("experiments", {})
    if name not in exps:
        raise ConfigError(f"unknown experiment {name!r}{_near(name, exps)}; experiments in {EXPERIMENTS_FILE}: "
                          f"{', '.join(exps)}")
    check_experiment(name, exps[name])
    spec = {k: v for k, v in exps[name].items() if k != "profiles"}
    spec = deep_merge(spec, (exps[name].get("profiles") or {}).get(profile) or {})
    spec.update(name=name, profile=profile)
    return spec


# -- the schema: what params.yaml and experiments.yaml may say -----------------------------
# A key nothing reads is a mistake (a misspelt `seedz` would leave the paper's 11 seeds,
# a profile `quik` the paper's protocol), so every mapping lists the keys it may hold.

TOP_KEYS = ("profile", "experiments")  # besides `_name` entries that hold YAML anchors
EXPERIMENT_KEYS = ("paper", "title", "task", "eval", "model", "grid", "seeds", "train", "lr", "tests", "rungs",
                   "profiles")
OVERRIDE_KEYS = ("title", "task", "eval", "model", "grid", "seeds", "train", "lr", "tests")  # what a profile sets
SECTIONS = ("task", "eval", "model", "grid", "train", "lr", "tests")  # the keys whose value is a mapping
LR_KEYS = ("grid", "trial_steps", "repeats")
EVAL_KEYS = ("n", "seed")  # besides task settings, which the evaluation task changes (e.g. max_len)
TEST_KEYS = ("lengths", "segments", "n", "length")
TRAIN_TYPES = typing.get_type_hints(TrainConfig)


def check_params(params, path: Path, experiments_path: Path | None = None) -> None:
    """The settings: their top-level keys, the default profile (in `path`), every
    experiment's keys (in `experiments_path`, the same file unless given)."""
    _check_top_keys(params, path, TOP_KEYS)
    if params.get("profile") not in PROFILES:
        raise ConfigError(f"{path}: profile is {params.get('profile')!r}; it must be one of {', '.join(PROFILES)}")
    if not isinstance(params.get("experiments"), dict) or not params["experiments"]:
        raise ConfigError(f"{experiments_path or path}: `experiments` must map each experiment's name to its settings")
    for name, entry in params["experiments"].items():
        check_experiment(name, entry)


def check_experiment(name: str, entry) -> None:
    """An experiment's keys, and each profile's overrides apart (a mistake is reported where
    it was made, before the merge hides it). Every profile is listed: an experiment without
    `quick` would train the paper's protocol at the quick profile."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{name}: an experiment is a mapping of settings, not {entry!r}")
    _check_keys(name, entry, entry)
    profiles = entry.get("profiles")
    if not isinstance(profiles, dict):
        raise ConfigError(f"{name}: profiles must map each of {', '.join(PROFILES)} to its overrides "
                          "(`paper: {}` for none)")
    for profile, override in profiles.items():
        if profile not in PROFILES:
            raise _unknown(name, f"profiles.{profile}", PROFILES)
        if override is None:  # `paper:` alone: no overrides
            continue
        if not isinstance(override, dict):
            raise ConfigError(f"{name}: profiles.{profile} must be a mapping of overrides (`{{}}` for none), "
                              f"not {override!r}")
        _check_keys(name, override, deep_merge(entry, override), where=f"profiles.{profile}.")
    for profile in PROFILES:
        if profile not in profiles:
            raise ConfigError(f"{name}: profiles.{profile} is missing; list every profile "
                              f"({', '.join(PROFILES)}), with `{profile}: {{}}` to keep the base settings")


def _check_keys(name: str, settings: dict, spec: dict, where: str = "") -> None:
    """Every key of an experiment's settings (or, with `where`, of a profile's overrides) is
    one the schema knows. `spec` (the merged settings) tells the task and model family."""
    allowed = OVERRIDE_KEYS if where else EXPERIMENT_KEYS
    for key, value in settings.items():
        if key not in allowed:
            raise _unknown(name, where + str(key), allowed)
        if key == "rungs":
            _check_rungs(name, value, spec)
        if key not in SECTIONS:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: {where}{key} must be a mapping of settings, not {value!r}")
        if where and not value:  # merged into the base settings, {} changes nothing
            example = " (lr: {grid: [1.0e-3]} trains at one rate, without trials)" if key == "lr" else ""
            raise ConfigError(f"{name}: {where}{key} is empty, which changes nothing (a profile's settings are "
                              f"merged into the base settings); give the keys to change{example}")
        inner = _section_keys(key, spec)
        for k, v in value.items():
            if inner is not None and k not in inner:
                raise _unknown(name, f"{where}{key}.{k}", inner)
            if key == "tests":
                if not isinstance(v, dict):
                    raise ConfigError(f"{name}: {where}tests.{k} must be a mapping of settings, not {v!r}")
                for t in v:
                    if t not in TEST_KEYS:
                        raise _unknown(name, f"{where}tests.{k}.{t}", TEST_KEYS)


def _section_keys(section: str, spec: dict) -> tuple | None:
    """The keys a section may hold; None where the task or model family is unknown (the
    task or model check then names that mistake)."""
    if section in ("train", "lr", "tests"):
        return {"train": tuple(TRAIN_TYPES), "lr": LR_KEYS, "tests": tuple(final_tests.TESTS)}[section]
    task, model = spec.get("task"), spec.get("model")
    task_cls = TASKS.get(task.get("name")) if isinstance(task, dict) else None
    task_keys = tuple(f.name for f in dataclasses.fields(task_cls)) if task_cls else None
    family = model.get("family") if isinstance(model, dict) else None
    model_keys = _model_keys(family) if family in FAMILIES else None
    if section == "model":
        return model_keys
    if task_keys is None:
        return None
    if section == "task":
        return ("name", *task_keys)
    if section == "eval":
        return (*EVAL_KEYS, *task_keys)
    if model_keys is None:
        return None
    # a grid axis: a model setting, task.<setting>, train.<setting> or the difficulty rung
    return (*model_keys[1:], *(f"task.{k}" for k in task_keys), *(f"train.{k}" for k in TRAIN_TYPES), "rung")


def _check_rungs(name: str, rungs, spec: dict) -> None:
    """`rungs` names the steps of a difficulty ladder, each a mapping of dotted overrides
    (task.<setting>, eval.<setting>, tests.<test>.<setting>) that the grid axis `rung`
    picks from: {L10-20: {task.min_len: 10, task.max_len: 20, eval.max_len: 20}}."""
    if not isinstance(rungs, dict) or not rungs:
        raise ConfigError(f"{name}: rungs must map each rung's name to its overrides, not {rungs!r}")
    task_keys = _section_keys("task", spec)
    eval_keys = _section_keys("eval", spec)
    for rung, overrides in rungs.items():
        if overrides is None:
            continue
        if not isinstance(overrides, dict):
            raise ConfigError(f"{name}: rungs.{rung} must be a mapping of overrides (`{{}}` for none)")
        for key in overrides:
            section, _, rest = str(key).partition(".")
            allowed = {"task": task_keys, "eval": eval_keys}.get(section)
            if section == "tests":
                test, _, setting = rest.partition(".")
                ok = test in final_tests.TESTS and setting in TEST_KEYS
            else:
                ok = allowed is None and section in ("task", "eval") or (allowed is not None and rest in allowed)
            if not ok:
                raise ConfigError(f"{name}: rungs.{rung} sets {key!r}; a rung sets task.<setting>, "
                                  "eval.<setting> or tests.<test>.<setting>")


def _model_keys(family: str) -> tuple:
    """`family`, the builder's arguments (its first under its settings name), ModelConfig's fields."""
    build, first = FAMILIES[family]
    args = [a for a in inspect.signature(build).parameters if a != "overrides"][1:]
    return tuple(dict.fromkeys(["family", first, *args, *(f.name for f in dataclasses.fields(ModelConfig))]))


def _near(key, allowed) -> str:
    """' (did you mean 'seeds'?)' for a misspelt key, else ''."""
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(name: str, key: str, allowed) -> ConfigError:
    return ConfigError(f"{name}: unknown key {key!r}{_near(key.rsplit('.', 1)[-1], allowed)}; "
                       f"allowed there: {', '.join(map(str, allowed))}")


def check_spec(spec: dict) -> None:
    """An experiment's settings at a profile (merged), before its runs are built: every key
    known, every count positive, every list non-empty. The task, model and training
    settings of each run are then built by check_runs."""
    name = spec.get("name", "experiment")
    settings = {k: v for k, v in spec.items() if k not in ("name", "profile")}
    for key in ("task", "model"):
        if key not in settings:
            raise ConfigError(f"{name}: no `{key}` settings; an experiment needs task: {{name: ...}} "
                              "and model: {family: ...}")
    _check_keys(name, settings, settings)
    if "name" not in spec["task"]:
        raise ConfigError(f"{name}: task.name is missing; tasks are {', '.join(sorted(TASKS))}")
    if "family" not in spec["model"]:
        raise ConfigError(f"{name}: model.family is missing; families are {', '.join(FAMILIES)}")
    _need(name, "seeds", spec.get("seeds", 1), _is_count, "a positive whole number")
    _need(name, "eval.n", (spec.get("eval") or {}).get("n", 1), _is_count, "a positive whole number of sequences")
    _need(name, "eval.seed", (spec.get("eval") or {}).get("seed", 1), _is_int, "a whole number")
    for axis, values in (spec.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{name}: grid.{axis} is {values!r}; it must list at least one value")
    for rung in (spec.get("grid") or {}).get("rung", []):
        if rung not in (spec.get("rungs") or {}):
            raise ConfigError(f"{name}: grid.rung names {rung!r}{_near(rung, spec.get('rungs') or {})}; "
                              f"rungs defined: {', '.join(spec.get('rungs') or {}) or 'none'}")
    lr = spec.get("lr") or {}
    if "grid" in lr:
        if not isinstance(lr["grid"], list) or not lr["grid"]:
            raise ConfigError(f"{name}: lr.grid is {lr['grid']!r}; it must list at least one learning rate "
                              "(one: no trials), or be left out to train at train.lr")
        for x in lr["grid"]:
            if not _is_positive(x):
                raise ConfigError(f"{name}: lr.grid holds {x!r}; every learning rate must be a positive number"
                                  f"{_text_hint(x)}")
    if len(lr.get("grid") or []) > 1 or "trial_steps" in lr:  # trials need their length
        _need(name, "lr.trial_steps", lr.get("trial_steps"), _is_count, "a positive whole number of steps")
    _need(name, "lr.repeats", lr.get("repeats", 1), _is_count, "a positive whole number")
    for test, given in (spec.get("tests") or {}).items():
        _need(name, f"tests.{test}.n", given.get("n", 1), _is_count, "a positive whole number")
        for key in ("lengths", "segments"):
            if key in given and (not isinstance(given[key], list) or not given[key]):
                raise ConfigError(f"{name}: tests.{test}.{key} is {given[key]!r}; it must list at least one value")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)  # YAML's true is an int to Python


def _is_count(x) -> bool:
    return _is_int(x) and x > 0


def _is_positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _need(name: str, key: str, value, ok, what: str) -> None:
    if not ok(value):
        raise ConfigError(f"{name}: {key} is {value!r}; it must be {what}{_text_hint(value)}")


def _text_hint(value) -> str:
    """YAML 1.1 reads 1e-3 (no dot) and anything quoted as text, not as a number."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        if "e" in value.lower() and "." not in value:
            return f" (YAML reads {value} as text: write {value.lower().replace('e', '.0e', 1)})"
        return " (text, not a number: write it without quotes)"
    return ""


def train_config(name: str, train: dict) -> TrainConfig:
    """A run's training settings: each of its field's type (TrainConfig's annotations), then
    TrainConfig's own checks (positive steps and learning rate, a known schedule, ...)."""
    for key, value in train.items():
        if key not in TRAIN_TYPES:
            raise _unknown(name, f"train.{key}", TRAIN_TYPES)
        if not _fits(value, TRAIN_TYPES[key]):
            raise ConfigError(f"{name}: train.{key} is {value!r}; it must be {_kind(TRAIN_TYPES[key])}"
                              f"{_text_hint(value)}")
    cfg = TrainConfig(**train)
    try:
        cfg.validate()
    except ValueError as e:
        raise ConfigError(f"{name}: train: {e}") from None
    return cfg


def _fits(value, hint) -> bool:
    """Whether a YAML value has a TrainConfig field's type (an int is a float, a bool neither)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    return value is None if hint is type(None) else isinstance(value, hint)


def _kind(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_kind(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list of numbers"
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}[hint]


# model family -> its builder (lib.models.zoo) and the setting passed as the builder's first argument
FAMILIES = {"micro": (micro, "arch"), "mini": (mini, "arch"), "paper_b": (paper_b, "name")}


def model_config(spec: dict) -> ModelConfig:
    """{'family': 'micro', 'arch': 'SSM-TF', 'd_model': 12, ...} -> ModelConfig."""
    spec = dict(spec)
    family = spec.pop("family", None)
    if family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r}; use 'micro' or 'mini' (paper A) or 'paper_b'")
    build, first = FAMILIES[family]
    try:
        return build(spec.pop(first), **spec)
    except TypeError as e:  # an unknown keyword
        raise ModelError(f"bad model settings {spec}: {e}") from None
    except KeyError as e:
        raise ModelError(f"model family {family!r} needs the setting {e}") from None


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
    a task setting (`task.<name>`) or a training setting (`train.<name>`, e.g. `train.lr`),
    or `rung`: a step of the experiment's difficulty ladder (`rungs`), whose overrides of
    the task, evaluation and tests apply first. A rung without overrides leaves the runs'
    ids as they were without the axis."""
    check_spec(spec)
    grid = spec.get("grid") or {}
    keys = list(grid)
    runs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        task, model, train = dict(spec["task"]), dict(spec["model"]), dict(spec.get("train") or {})
        eval_cfg, tests = dict(spec.get("eval") or {}), copy.deepcopy(spec.get("tests") or {})
        for k, v in ((spec.get("rungs") or {}).get(point.get("rung")) or {}).items():
            section, _, rest = k.partition(".")
            if section == "tests":  # a rung adjusts the experiment's tests, never adds one
                test, _, setting = rest.partition(".")
                if test in tests:
                    tests[test][setting] = v
            else:
                (task if section == "task" else eval_cfg)[rest] = v
        for k, v in point.items():
            if k == "rung":
                continue
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
                            tests=copy.deepcopy(tests)))
    check_runs(runs)
    return runs


def select_runs(runs: list[Run], only: dict[str, list[str]] | None,
                within: list[Run] | None = None) -> list[Run]:
    """The runs whose grid labels (or seed) take one of the given values, e.g.
    {"rung": ["L10-20"], "train.lr": ["3e-4", "1e-3"], "seed": ["0"]}: a campaign that trains
    the easiest rung first. Numbers compare as numbers. A key or value that selects nothing
    in `within` (default: `runs`; a sweep of several experiments passes all their runs, so
    one experiment may lack a value that another has) is refused in one line, before any work."""
    if not only:
        return list(runs)
    pool = runs if within is None else within

    def value(run: Run, key: str):
        return run.seed if key == "seed" else run.labels.get(key)

    def same(a, b: str) -> bool:
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            try:
                return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
            except ValueError:
                return False
        return str(a) == b

    keys = sorted({k for r in pool for k in r.labels} | {"seed"})
    for key, wanted in only.items():
        if key not in keys:
            raise ConfigError(f"select {key}: not a grid label of these runs; allowed: {', '.join(keys)}")
        have = sorted({str(value(r, key)) for r in pool if key == "seed" or key in r.labels}, key=str)
        missing = [w for w in wanted if not any(same(value(r, key), w) for r in pool)]
        if missing:
            raise ConfigError(f"select {key}={','.join(missing)}: no such run; allowed: {', '.join(have)}")
    return [r for r in runs if all(any(same(value(r, k), w) for w in ws) for k, ws in only.items())]


def check_runs(runs: list[Run]) -> None:
    """Build every task and model config once (cheaply) so bad input fails before work starts."""
    seen = set()
    for r in runs:
        key = json.dumps([r.task, r.eval_task, r.model, r.train, r.tests], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        try:
            task, eval_task = r.make_task(), r.make_eval_task()
            train_config(r.experiment, r.train)
            final_tests.check(r.tests, task)
            cfg = r.model_config()
            cfg.validate(seq_len=max(task.seq_len, eval_task.seq_len))
        except (TaskError, ModelError) as e:  # one kind of error for a mistake in the settings
            raise ConfigError(f"{r.experiment}: {e}") from e
        if eval_task.vocab_size != task.vocab_size:
            raise ConfigError(f"{r.experiment}: the eval task changes the vocabulary")


def describe(name: str, profile: str) -> str:
    """An experiment's settings at a profile, in a few lines (for the notebooks)."""
    s = experiment_spec(name, profile)
    return (f"{name}: task {s['task']}\n  model {s['model']}\n  grid {s['grid']}\n"
            f"  {s['seeds']} seeds, {s['train']['steps']} steps, lr from {s['lr']['grid']}, "
            f"eval on {s['eval']['n']} held-out sequences")
