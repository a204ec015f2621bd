"""Importing the library changes no global state (issue 24 §2): no environment variables,
no warning filters. Checked in a fresh interpreter, since this test session has already
imported everything."""
import subprocess
import sys

from lib.config import ROOT

PROBE = """
import os, warnings
import numpy, pandas, torch, matplotlib.pyplot, seaborn, scipy.stats  # third parties add their own filters
env, filters = dict(os.environ), list(warnings.filters)
import lib.config, lib.models, lib.tasks, lib.training, lib.results, lib.sweeps, lib.sweeps.runner, lib.plots, lib.claims
import lib.analysis.retrieval, lib.analysis.position, lib.analysis.scale, lib.analysis.ladder, lib.bench.cost
import lib.claims.paper_a, lib.claims.paper_b_ngram, lib.claims.paper_b_position, lib.claims.paper_a_scale
import lib.claims.paper_a_theory, lib.plots.retrieval, lib.plots.position, lib.plots.scale, lib.plots.ladder
assert dict(os.environ) == env, set(os.environ) ^ set(env)
assert list(warnings.filters) == filters, [f for f in warnings.filters if f not in filters]
"""


def test_importing_the_library_sets_no_environment_variable_or_warning_filter():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_sweeps_cli_explains_itself_and_its_knobs():
    done = subprocess.run([sys.executable, "-m", "lib.sweeps", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--profile", "--experiments", "--only", "--time-budget", "--workdir", "--concurrent",
                   "--checkpoints", "--data-processes", "COMPANION_CONCURRENT"):
        assert option in done.stdout, option
