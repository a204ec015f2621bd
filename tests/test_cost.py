"""`python -m lib.bench.cost` plans a sweep's ensembles as the sweep packs them, times
each kind and projects: here on the CPU, for one kind of A-scale's quick profile."""
import json

from lib.config import expand_runs, experiment_spec
from lib.bench.cost import main, project


def test_cost_projects_the_planned_member_steps(tmp_path):
    out = tmp_path / "cost.json"
    main(["--profile", "quick", "--experiments", "A-scale", "--only", "hybrid", "--steps", "2", "--short", "1",
          "--concurrent", "2", "--device", "cpu", "--json", str(out)])
    report = json.loads(out.read_text())["experiments"]["A-scale"]
    runs = [r for r in expand_runs(experiment_spec("A-scale", "quick")) if r.labels["arch"] == "hybrid"]
    (kind,) = report["kinds"]
    assert kind["model"] == "hybrid" and kind["s_per_step"] > 0
    assert kind["member_steps"] == sum(r.train["steps"] for r in runs)  # every run's full budget
    assert report["runs"] == len(expand_runs(experiment_spec("A-scale", "quick")))
    assert abs(report["projected_gpu_hours"] - round(project([kind]) / 3600, 2)) < 1e-9
