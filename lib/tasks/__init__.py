"""Every task of both papers, by name. `make_task("selective_copy", length=50)`."""
from __future__ import annotations

import dataclasses

from .base import Batch, Task, TaskError, eval_set, rng_for
from .paper_a import DecodeRecall, DecodeRecallLast, MultiKeyRecall, NeedleInHaystack, SelectiveCopy
from .paper_b import NGramDuplicates, NGramRetrieval, PositionRetrieval

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (SelectiveCopy, DecodeRecallLast, DecodeRecall, MultiKeyRecall, NeedleInHaystack,
                NGramRetrieval, NGramDuplicates, PositionRetrieval)
}


def make_task(name: str, **settings) -> Task:
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(settings) - fields
    if unknown:
        raise TaskError(f"task {name!r} has no setting {', '.join(sorted(unknown))}; "
                        f"its settings are {', '.join(sorted(fields))}")
    return cls(**settings)


__all__ = ["TASKS", "Batch", "Task", "TaskError", "eval_set", "make_task", "rng_for"]
