"""Tests of the benchmarks: their data generators, projections and --quick smoke runs."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
try:
  from benchmarks import hull_solver  # pylint: disable=g-import-not-at-top
except ImportError:  # Bare `pytest` with an editable install older than benchmarks/.
  sys.path.insert(0, str(REPO))
  from benchmarks import hull_solver  # pylint: disable=g-import-not-at-top
from benchmarks import scale  # pylint: disable=g-import-not-at-top


def _quick_json(module: str, timeout: int) -> dict:
  """The JSON report of `python -m benchmarks.MODULE --quick --json` (exit status 0 asserted)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", "--quick", "--json"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(proc.stdout)


def test_structured_images_shape_range_and_determinism():
  x, y = hull_solver.structured_images(50, seed=3)
  assert x.shape == (50, 784) and x.dtype == np.float32 and y.shape == (50,)
  assert x.min() >= 0.0 and x.max() <= 1.0
  np.testing.assert_array_equal(x, hull_solver.structured_images(50, seed=3)[0])
  other, _ = hull_solver.structured_images(50, seed=3, stream=1)
  assert not np.allclose(x, other)
  rgb, _ = hull_solver.structured_images(4, side=8, channels=3, seed=3)
  assert rgb.shape == (4, 192)


def test_structured_images_low_effective_rank():
  x, _ = hull_solver.structured_images(600, seed=0)
  s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
  assert np.searchsorted(np.cumsum(s) / s.sum(), 0.95) < 40  # Of 784 dimensions.


def test_fit_slope():
  assert hull_solver.fit_slope([1e3, 1e4], [2.0, 20.0]) == pytest.approx(1.0)
  assert hull_solver.fit_slope([1e3], [2.0]) is None


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_quick_benchmark_json():
  pytest.importorskip("cvxpy")
  report = _quick_json("hull_solver", timeout=900)
  assert {"config", "machine", "cases", "scaling", "targets", "total_wall_s"} <= set(report)
  i12 = report["issue12"]
  assert i12["d784"]["pricing_pass_s"] > 0 and i12["d784_baseline"]["ms_per_query"] > 0
  for key in ("d784", "d784_baseline", "d64", "n_large"):
    c = i12[key]
    assert c["outside"] + c["inside"] + c["undetermined"] == c["queries"]
  # The new solver and today's agree, and both agree with Wolfe's exact distances.
  assert i12["d784_max_rel_diff_vs_baseline"] <= 2e-4
  assert i12["peers"]["numpy_wolfe"]["max_rel_diff_tfhull"] <= 1e-4
  assert i12["peers"]["sketching_2102.10502_centred"]["max_rel_diff_wolfe"] <= 1e-4
  assert i12["peers"]["sketching_2102.10502"]["ms_per_query"] > 0
  # The queries built inside the PCA hull are found inside.
  assert i12["d64"]["inside_built_verdict_inside"] == i12["d64"]["inside_built"]
  assert set(i12["targets"]) >= {"batch_over_passes_x_gemm", "per_class_over_one_hull",
                                 "n_large_mean_passes", "speedup_vs_baseline"}
  assert report["machine"]["cpu_count"] >= 1 and report["machine"]["keras_backend"]
  names = [c["case"] for c in report["cases"]]
  assert names == ["synthetic-300", "synthetic-1000", "digits"]
  for case in report["cases"]:
    tf_stats, exact = case["tfhull"], case["exact_wolfe"]
    assert tf_stats["s_per_query"] > 0 and tf_stats["mean_passes"] >= 1
    assert tf_stats["fraction_converged"] == 1.0
    assert tf_stats["max_rel_gap"] is None or tf_stats["max_rel_gap"] <= 1e-4
    assert exact["queries"] == 8 and exact["all_converged"]
    assert exact["max_rel_error"] <= 1e-4, case
    assert exact["interval_violations"] == 0, case
    assert {"CLARABEL", "ECOS"} == set(case["cvxpy"])
    assert "speedup_vs_clarabel" in case and "speedup_vs_ecos" in case
  small = report["cases"][0]
  assert small["cvxpy"]["CLARABEL"]["status"] == "measured"
  assert small["cvxpy"]["CLARABEL"]["max_rel_error_vs_exact"] < 1e-4
  assert small["speedup_vs_clarabel"] > 1
  # n = 1000 is above the quick caps: estimated, and labelled so.
  assert report["cases"][1]["cvxpy"]["CLARABEL"]["status"].startswith("not run (too slow")
  assert report["cases"][1]["speedup_vs_clarabel_basis"].startswith("estimated")
  assert report["scaling"]["tfhull_log_time_vs_log_n_slope"] is not None


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_quick_attack_benchmark_json():
  report = _quick_json("attacks", timeout=300)
  pgd, cw = report["cases"]
  assert pgd["case"] == "pgd20_linf_eps0.1" and cw["case"] == "cw_l2_5x200"
  for method in ("tfhull", "tfhull_xla", "cleverhans_per_batch"):
    assert pgd[method]["examples_per_s"] > 0
  # Same attack, same model: the robust accuracies agree up to the random starts.
  assert abs(pgd["tfhull"]["robust_accuracy"]
             - pgd["cleverhans_per_batch"]["robust_accuracy"]) < 0.1
  assert pgd["tfhull"]["max_linf"] <= 0.1 + 1e-6
  assert cw["tfhull"]["success_rate"] > 0.9
  assert "error" in cw["cleverhans_per_batch"] or cw["speedup"] > 0


def test_scale_synthetic_cifar_shape_labels_and_determinism():
  x, y = scale.synthetic_cifar(600, seed=2)
  assert x.shape == (600, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
  assert set(np.unique(y)) == set(range(10))
  np.testing.assert_array_equal(x, scale.synthetic_cifar(600, seed=2)[0])
  # Learnable: the class colour means differ by far more than their noise.
  means = np.stack([x[y == c].reshape(-1, 3).mean(0) for c in range(10)])
  gaps = np.linalg.norm(means[:, None] - means[None], axis=2)[~np.eye(10, dtype=bool)]
  assert gaps.min() > 5


def test_scale_projection_multiplies_rates_by_the_full_config():
  rows = {name: {"cpu_s": 2.0, "rows": 4} for name in (
      "features", "fgm", "pgd", "cw_l2", "haar", "hull_pixel", "hull_haar", "hull_features")}
  rows["train"] = {"step_cpu_s": 3.0}
  got = scale.project(rows, cw_iterations=10)
  full = scale.FULL
  assert got["train"] == pytest.approx(200 * (3.0 * 390 + 0.5 * 10_000))
  assert got["features"] == pytest.approx(0.5 * 60_000)
  assert got["attacks"] == pytest.approx(1000 * (4 * 2 * (0.5 + 0.5) + 0.5 * 1000 / 10))
  assert got["haar"] == pytest.approx(0.5 * 60_000)
  assert got["hull"] == pytest.approx(3 * 0.5 * full["hull_queries"])
  assert got["total"] == pytest.approx(sum(v for k, v in got.items() if k != "total"))


@pytest.mark.slow  # About 100 s of CPU (TensorFlow, a ResNet-8 and three hull compilations).
def test_quick_scale_benchmark_json():
  report = _quick_json("scale", timeout=900)
  for name in ("data", "train", "features", "fgm", "pgd", "cw_l2", "haar", "hull_pixel",
               "hull_haar", "hull_features"):
    row = report["steps"][name]
    assert row["wall_s"] > 0 and row["cpu_s"] > 0 and 0 < row["peak_rss_gb"] < 24, name
  assert report["projected_full_cpu_s"] == pytest.approx(
      scale.project(report["steps"], report["config"]["cw_iterations"]))
  assert report["peak_rss_gb"] < report["ram_limit_gb"] == 24
