"""lib.bench.benchmark, the ensemble speed-up benchmark: it runs on the CPU, and its
--compile probe trains to the same losses as the library's own path, and leaves the
library as it found it."""
import shutil

import pytest

from lib.models import ensemble
from lib.bench.benchmark import main
from lib.training import loop


def _losses(rows):
    return {r["members"]: r["final_loss_mean"] for r in rows}


def test_benchmark_runs_on_cpu(tmp_path):
    rows = main(["--device", "cpu", "--archs", "SSM-TF", "--members", "1,3", "--steps", "4", "--streams", "2",
                 "--json", str(tmp_path / "b.json")])
    assert [(r["members"], r["streams"], r["steps"]) for r in rows] == [(1, 1, 4), (3, 2, 4)]
    assert (tmp_path / "b.json").exists()


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_compile_probe_matches_and_restores():
    before = (ensemble._norm, ensemble.keyed_keep, ensemble.Ensemble._attn, ensemble.Ensemble._mamba,
              loop.member_losses)
    args = ["--device", "cpu", "--archs", "SSM-TF", "--members", "2", "--steps", "4"]  # one shape, one compilation
    eager, compiled = _losses(main(args)), _losses(main(args + ["--compile"]))
    assert compiled == pytest.approx(eager, rel=1e-5)
    assert before == (ensemble._norm, ensemble.keyed_keep, ensemble.Ensemble._attn, ensemble.Ensemble._mamba,
                      loop.member_losses)
