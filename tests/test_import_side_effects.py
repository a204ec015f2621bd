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
import lib.config, lib.models, lib.tasks, lib.training, lib.sweeps, lib.sweeps.runner, lib.plots, lib.claims
import lib.claims_b, lib.claims_b_position, lib.claims_a_scale, lib.ladder, lib.theory_a
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
