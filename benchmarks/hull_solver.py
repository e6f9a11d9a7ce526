r"""Benchmark: `tfhull.hull.project_onto_hull` against exact (Wolfe) and cvxpy references.

  python -m benchmarks.hull_solver                 # readable table (stderr: progress)
  python -m benchmarks.hull_solver --json          # one JSON object on stdout
  python -m benchmarks.hull_solver --quick --json  # tiny smoke configuration (tests)

Cases (protocol: shared/notes/hull-solver.md section 8):
  - "synthetic-<n>": digits-like structured synthetic images, d = 784 (28 x 28, values in [0, 1],
    smooth blobs from a 64-atom dictionary, 10 class prototypes, low effective rank, plus noise;
    `structured_images`), n in --sizes, --queries fresh images from the same generator.
  - "digits": scikit-learn's 8 x 8 digits (bundled, no download), d = 64, pixels / 16, a
    stratified split into 1,347 training points and 450 test queries.

Per case: tfhull seconds per query (XLA compilation excluded: a warm-up solve of the first batch
compiles every kernel at every shape first and is timed separately), Wolfe's exact float64
minimum-norm point on --reference_queries queries (max |d - d*| / d*, d* inside [lower_bound, upper_bound]?), and the
cvxpy baselines of the paper (CLARABEL, ECOS) on --baseline_queries queries where affordable;
larger ones are "not run" with an estimate from the measured n-scaling, labelled as such.
Timings are wall clock on this machine, whatever KERAS_BACKEND selects (reported).

Issue-12 section (`run_issue12`, --issue12): d = 784, n = 10,000 structured images, 256 queries:
the solver against one pricing pass timed in the same run and against today's solver
(`BASELINE_OPTIONS`); PCA-64 of the same data with a quarter of the queries built inside; per-class
hulls (10 classes) against one hull; n = 60,000 (mean passes); the same case under
KERAS_BACKEND=jax (subprocess); peers numpy Wolfe, cvxpy+Clarabel and the author's sketching
method (benchmarks/peers/sketching.py, as published and centred) with their agreement.
"""

import dataclasses
import json
import math
import os
import platform
import sys
import time
from typing import Any, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from benchmarks import solver_stats
from tfhull import environment

DIM_SIDE = 28  # Synthetic images are 28 x 28 = 784-dimensional, like MNIST.
DIGITS_TEST = 450  # 1,797 digits -> 1,347 training points, 450 queries.

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program: importing defines none)."""
  flags.DEFINE_bool("json", False, "Print one JSON object on stdout instead of a table.")
  flags.DEFINE_list("sizes", ["1000", "5000", "20000"],
                    "Training-set sizes n of the synthetic cases (d = 784).")
  flags.DEFINE_integer("queries", 256, "Queries solved by tfhull per synthetic case.",
                       lower_bound=1)
  flags.DEFINE_integer("baseline_queries", 2, "Queries per cvxpy baseline (each costs seconds "
                       "to minutes; 0 skips the baselines).", lower_bound=0)
  flags.DEFINE_integer("reference_queries", 32,
                       "Queries checked against Wolfe's exact algorithm.", lower_bound=1)
  flags.DEFINE_integer("batch_size", 256, "tfhull batch size.", lower_bound=1)
  flags.DEFINE_integer("seed", 0, "Seed of the synthetic data and of the digits split.")
  flags.DEFINE_bool("digits", True, "Include the scikit-learn digits case.")
  flags.DEFINE_integer("clarabel_max_n", 5000,
                       "Run cvxpy+CLARABEL only where n * d <= clarabel_max_n * 784.")
  flags.DEFINE_integer("ecos_max_n", 1000,
                       "Run cvxpy+ECOS only where n * d <= ecos_max_n * 784.")
  flags.DEFINE_bool("issue12", True, "Run the issue-12 section (d=784 n=10k vs today's solver "
                    "and one pricing pass, PCA-64, per-class, n=60k, JAX, peers).")
  flags.DEFINE_bool("cases", True, "Run the n-sweep and digits cases.")
  flags.DEFINE_bool("methods", True, "Run the methods section (issue 17: column generation vs "
                    "projected gradient at d = 784, 64 and n = 10k, 60k; benchmarks/hull_methods.py"
                    "; JSON key 'methods').")
  flags.DEFINE_bool("quick", False, "Tiny smoke configuration (n = 300, 1000; 32 queries; one "
                    "baseline query at n = 300 and on digits); overrides the other size flags.")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """What to run; `quick_config()` is the smoke test's."""
  sizes: Sequence[int] = (1000, 5000, 20000)
  queries: int = 256
  baseline_queries: int = 2
  reference_queries: int = 32
  batch_size: int = 256
  seed: int = 0
  digits: bool = True
  digits_queries: Optional[int] = None  # None: all 450 test digits.
  clarabel_max_n: int = 5000
  ecos_max_n: int = 1000
  rel_tol: float = 1e-4
  quick: bool = False
  issue12: Optional["Issue12Config"] = None  # None: skip the issue-12 section.
  methods: Optional[Any] = None  # hull_methods.MethodsConfig; None: skip the methods section.


def quick_config(seed: int = 0) -> BenchConfig:
  return BenchConfig(sizes=(300, 1000), queries=32, baseline_queries=1, reference_queries=8,
                     batch_size=32, seed=seed, digits=True, digits_queries=32, clarabel_max_n=300,
                     ecos_max_n=300, quick=True,
                     issue12=dataclasses.replace(quick_issue12(), seed=seed))


# ------------------------------------------------------------------------------------------------
# Data.


def structured_images(n: int, *, side: int = DIM_SIDE, channels: int = 1, seed: int = 0,
                      stream: int = 0, atoms: int = 64, classes: int = 10,
                      noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
  """Digits-like structured synthetic images: (n, side * side * channels) float32 in [0, 1].

  A fixed (by `seed`) dictionary of `atoms` smooth Gaussian blobs (widths 5-14 % of the side,
  centres in the middle 60 %), each with a colour per channel; `classes` prototypes, each a
  sparse nonnegative mix of 8 blobs. An image of class c: blob weights = prototype_c times
  log-normal jitter plus a few random extra blobs, ink = weights @ blobs, pixel = 1 - exp(-ink)
  (saturating strokes), plus Gaussian noise, clipped to [0, 1]. Effective rank is low (about 13
  principal components hold 95 % of the variance at side 28) but the noise makes the data
  full-dimensional, so test images lie outside the training hull, as real images do.

  Args:
    n: number of images.
    side: image height and width.
    channels: colour channels (interleaved last, like HWC images flattened).
    seed: fixes the dictionary and prototypes (the "dataset").
    stream: independent sample streams of the same dataset (e.g. 0 train, 1 test).
    atoms: dictionary size.
    classes: number of prototypes.
    noise: pixel noise standard deviation.

  Returns:
    (images (n, side * side * channels) float32, labels (n,) int64).
  """
  rng = np.random.default_rng([seed, 0])
  yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
  cy, cx = rng.uniform(0.2 * side, 0.8 * side, (2, atoms))
  sy, sx = rng.uniform(0.05 * side, 0.14 * side, (2, atoms))
  blobs = np.exp(-0.5 * (((yy[None] - cy[:, None, None]) / sy[:, None, None]) ** 2
                         + ((xx[None] - cx[:, None, None]) / sx[:, None, None]) ** 2))
  blobs = blobs.reshape(atoms, side * side)
  colour = rng.uniform(0.3, 1.0, (atoms, channels))
  protos = np.zeros((classes, atoms))
  for c in range(classes):
    protos[c, rng.choice(atoms, 8, replace=False)] = rng.uniform(0.6, 1.4, 8)

  rng = np.random.default_rng([seed, 1 + stream])
  labels = rng.integers(0, classes, n)
  out = np.empty((n, side * side * channels), np.float32)
  for start in range(0, n, 8192):  # Bounded float64 temporaries at CIFAR scale.
    lab = labels[start:start + 8192]
    k = len(lab)
    w = protos[lab] * rng.lognormal(0.0, 0.35, (k, atoms))
    w += (rng.random((k, atoms)) < 3.0 / atoms) * rng.uniform(0.0, 0.6, (k, atoms))
    w *= 1.5
    for ch in range(channels):
      img = 1.0 - np.exp(-((w * colour[:, ch]) @ blobs))
      img += rng.normal(0.0, noise, img.shape)
      out[start:start + k, ch::channels] = np.clip(img, 0.0, 1.0)
  return out, labels.astype(np.int64)


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn digits / 16: (1347, 64) training points and (450, 64) queries, stratified."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  x, y = datasets.load_digits(return_X_y=True)
  train, test = model_selection.train_test_split(
      (x / 16.0).astype(np.float32), test_size=DIGITS_TEST, random_state=seed, stratify=y)
  return train, test


# ------------------------------------------------------------------------------------------------
# Measurements.


def _log(msg: str, *args) -> None:
  logging.info(msg, *args)


def time_tfhull(points: np.ndarray, queries: np.ndarray, *, batch_size: int,
                rel_tol: float) -> tuple[Any, dict[str, Any]]:
  """Solves all queries with tfhull, after a warm-up call that compiles every kernel.

  The warm-up solves the first batch completely (every compiled function at every shape the
  solve uses, the compacted batches of late passes included), so its time is an upper bound on
  the compilation time.
  """
  from tfhull.hull import project_onto_hull  # pylint: disable=g-import-not-at-top
  b = min(batch_size, len(queries))
  t0 = time.perf_counter()
  project_onto_hull(points, queries[:b], batch_size=b, rel_tol=rel_tol)
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  res = project_onto_hull(points, queries, batch_size=b, rel_tol=rel_tol)
  wall = time.perf_counter() - t0
  q = len(queries)
  per_query = wall / q
  stats = {
      "queries": q,
      "batch_size": b,
      "warmup_s": first,  # One batch, compiling: >= the compilation time.
      "solve_s": wall,
      "s_per_query": per_query,
      "queries_per_s": q / wall,
      **solver_stats.solver_stats(res),
  }
  return res, stats


def compare_exact(res, points: np.ndarray, queries: np.ndarray,
                  count: int) -> tuple[np.ndarray, dict[str, Any]]:
  """Wolfe (float64) on the first `count` queries: errors and interval checks of `res`."""
  from tfhull.hull import reference  # pylint: disable=g-import-not-at-top
  count = min(count, len(queries))
  t0 = time.perf_counter()
  exact = reference.project_batch(points, queries[:count])
  wall = time.perf_counter() - t0
  d_star = np.array([e.distance for e in exact])
  d = res.distance[:count]
  lb, ub = res.lower_bound[:count], res.upper_bound[:count]
  # Queries at (numerically) zero distance have no relative error: judged absolutely.
  positive = d_star > 1e-6 * np.maximum(res.nearest_distance[:count], 1e-300)
  rel = np.abs(d - d_star)[positive] / d_star[positive]
  slack = 1e-9 * np.maximum(d_star, ub) + 1e-12  # Wolfe's own (1e-12 squared-scale) tolerance.
  violations = int(np.sum((d_star < lb - slack) | (d_star > ub + slack)))
  return d_star, {
      "queries": count,
      "s_per_query": wall / max(count, 1),
      "all_converged": bool(all(e.converged for e in exact)),
      "max_rel_error": float(rel.max()) if rel.size else None,
      "median_rel_error": float(np.median(rel)) if rel.size else None,
      "zero_distance_queries": int(np.sum(~positive)),
      "max_abs_error_zero_distance": (float(np.abs(d - d_star)[~positive].max())
                                      if (~positive).any() else None),
      "interval_violations": violations,
      "median_support": float(np.median([len(e.support) for e in exact])),
  }


def time_cvxpy(solver: str, points: np.ndarray, queries: np.ndarray,
               d_star: np.ndarray) -> dict[str, Any]:
  """cvxpy (the paper's formulation) on a few queries; the first call includes compilation."""
  from tfhull.hull import reference  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  proj = reference.CvxpyProjector(points, solver=solver, tol=1e-8)
  build = time.perf_counter() - t0
  walls, solver_times, dist = [], [], []
  for x in queries:
    t0 = time.perf_counter()
    r = proj(x)
    walls.append(time.perf_counter() - t0)
    st = proj._problem.solver_stats  # pylint: disable=protected-access
    solver_times.append(float(st.solve_time) if st is not None and st.solve_time else math.nan)
    dist.append(r.distance)
  walls = np.array(walls)
  # Steady state: calls after the first (which canonicalises the problem), when there are any.
  steady = walls[1:] if len(walls) > 1 else walls
  rel = np.abs(np.array(dist) - d_star[:len(dist)]) / np.maximum(d_star[:len(dist)], 1e-300)
  return {
      "status": "measured",
      "queries": len(walls),
      "s_per_query": float(np.mean(steady)),
      "s_per_query_basis": ("wall clock, mean of calls 2.." + str(len(walls)) if len(walls) > 1
                            else "wall clock of the only call (includes cvxpy's compilation)"),
      "first_call_s": float(walls[0] + build),
      "solver_s_per_query": float(np.nanmean(solver_times)),
      "max_rel_error_vs_exact": float(rel.max()),
  }


def fit_slope(ns: Sequence[float], ts: Sequence[float]) -> Optional[float]:
  """Least-squares slope of log t against log n (None with fewer than two points)."""
  if len(ns) < 2:
    return None
  return float(np.polyfit(np.log(np.asarray(ns, float)), np.log(np.asarray(ts, float)), 1)[0])


# ------------------------------------------------------------------------------------------------
# The benchmark.


def machine_info() -> dict[str, Any]:
  """CPU, Python, backend and package versions (versions read without importing packages)."""
  import keras  # pylint: disable=g-import-not-at-top
  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  versions = environment.package_versions(
      ("tfhull", "numpy", "scipy", "keras", "tensorflow", "jax", "jaxlib", "cvxpy", "clarabel",
       "ecos", "scikit-learn"))
  affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
  return {
      "cpu": cpu,
      "cpu_count": os.cpu_count(),
      "cpus_usable": affinity,
      "platform": platform.platform(),
      "python": platform.python_version(),
      "keras_backend": keras.backend.backend(),
      "accelerators": _accelerators(keras.backend.backend()),
      "versions": versions,
      # Other processes competing for the CPUs skew every timing: recorded, not corrected.
      "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
  }


def _accelerators(backend: str) -> list[str]:
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return [d.name for d in tf.config.list_logical_devices("GPU")]
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return [str(d) for d in jax.devices() if d.platform != "cpu"]
  return []


def _baseline_plan(name: str, n: int, d: int, cfg: BenchConfig) -> dict[str, bool]:
  return {"CLARABEL": n * d <= cfg.clarabel_max_n * 784 and cfg.baseline_queries > 0,
          "ECOS": n * d <= cfg.ecos_max_n * 784 and cfg.baseline_queries > 0}


def run_case(name: str, points: np.ndarray, queries: np.ndarray,
             cfg: BenchConfig) -> dict[str, Any]:
  """tfhull + Wolfe + the affordable cvxpy baselines on one (points, queries) pair."""
  n, d = points.shape
  _log("%s: n=%d d=%d queries=%d: tfhull", name, n, d, len(queries))
  res, tf_stats = time_tfhull(points, queries, batch_size=cfg.batch_size, rel_tol=cfg.rel_tol)
  _log("%s: %.2f ms/query, %.1f passes; Wolfe on %d queries", name,
       1e3 * tf_stats["s_per_query"], tf_stats["mean_passes"], cfg.reference_queries)
  d_star, exact = compare_exact(res, points, queries, cfg.reference_queries)
  baselines = {}
  for solver, run in _baseline_plan(name, n, d, cfg).items():
    if not run:
      baselines[solver] = {"status": "not run"}
      continue
    k = min(cfg.baseline_queries, len(d_star))
    _log("%s: cvxpy+%s on %d queries", name, solver, k)
    try:
      baselines[solver] = time_cvxpy(solver, points, queries[:k], d_star)
    except (ImportError, RuntimeError) as e:
      baselines[solver] = {"status": f"failed: {e}"}
    _log("%s: cvxpy+%s: %s", name, solver, baselines[solver])
  return {"case": name, "n": n, "d": d, "tfhull": tf_stats, "exact_wolfe": exact,
          "cvxpy": baselines}


def _fill_estimates(cases: list[dict[str, Any]]) -> Optional[float]:
  """Estimates not-run baselines from the measured synthetic n-scaling; adds speed-ups."""
  synth = [c for c in cases if c["case"].startswith("synthetic")]
  measured = [(c["n"], c["cvxpy"]["CLARABEL"]["s_per_query"]) for c in synth
              if c["cvxpy"]["CLARABEL"]["status"] == "measured"]
  exponent = fit_slope(*zip(*measured)) if len(measured) >= 2 else None
  basis = (f"CLARABEL's measured exponent {exponent:.2f} (n = "
           f"{', '.join(str(m[0]) for m in measured)})" if exponent is not None
           else "an assumed linear exponent 1.0")
  exponent_used = exponent if exponent is not None else 1.0
  for solver in ("CLARABEL", "ECOS"):
    known = [(c["n"], c["cvxpy"][solver]["s_per_query"]) for c in synth
             if c["cvxpy"][solver]["status"] == "measured"]
    for c in synth:
      entry = c["cvxpy"][solver]
      if entry["status"] != "not run" or not known:
        continue
      n0, t0 = min(known, key=lambda kt: abs(math.log(kt[0] / c["n"])))
      est = t0 * (c["n"] / n0) ** exponent_used
      entry["estimated_s_per_query"] = est
      entry["status"] = (f"not run (too slow: estimated {est:.0f} s/query from the n-scaling: "
                         f"{solver} measured {t0:.1f} s/query at n = {n0}, scaled by {basis})")
  for c in cases:
    per_query = c["tfhull"]["s_per_query"]
    for solver in ("CLARABEL", "ECOS"):
      entry = c["cvxpy"][solver]
      if entry["status"] == "measured":
        c[f"speedup_vs_{solver.lower()}"] = entry["s_per_query"] / per_query
        c[f"speedup_vs_{solver.lower()}_basis"] = "measured"
      elif "estimated_s_per_query" in entry:
        c[f"speedup_vs_{solver.lower()}"] = entry["estimated_s_per_query"] / per_query
        c[f"speedup_vs_{solver.lower()}_basis"] = "estimated (baseline not run)"
      else:
        c[f"speedup_vs_{solver.lower()}"] = None
        c[f"speedup_vs_{solver.lower()}_basis"] = "not run"
  return exponent


def _targets(cases: list[dict[str, Any]], slope: Optional[float]) -> dict[str, Any]:
  at = {c["n"]: c for c in cases if c["case"].startswith("synthetic")}
  c5 = at.get(5000)
  speed = c5.get("speedup_vs_clarabel") if c5 else None
  err = c5["exact_wolfe"]["max_rel_error"] if c5 else None
  return {
      "speedup_vs_clarabel_at_n5000_d784": {
          "target": ">= 100", "value": speed,
          "basis": c5.get("speedup_vs_clarabel_basis") if c5 else "n = 5000 not in --sizes",
          "met": None if speed is None else bool(speed >= 100)},
      "max_rel_error_at_n5000_d784": {
          "target": "<= 1e-4", "value": err, "met": None if err is None else bool(err <= 1e-4)},
      "tfhull_time_vs_n_slope": {
          "target": "about 1 (linear in n; met if <= 1.2)", "value": slope,
          "met": None if slope is None else bool(slope <= 1.2)},
  }


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
  """Runs every case; returns the JSON-ready report."""
  t_start = time.perf_counter()
  info = machine_info()
  cases = []
  for n in cfg.sizes:
    points, _ = structured_images(n, seed=cfg.seed, stream=0)
    queries, _ = structured_images(cfg.queries, seed=cfg.seed, stream=1)
    cases.append(run_case(f"synthetic-{n}", points, queries, cfg))
  if cfg.digits:
    train, test = digits_split(cfg.seed)
    if cfg.digits_queries is not None:
      test = test[:cfg.digits_queries]
    cases.append(run_case("digits", train, test, cfg))
  synth = [c for c in cases if c["case"].startswith("synthetic")]
  slope = fit_slope([c["n"] for c in synth], [c["tfhull"]["s_per_query"] for c in synth])
  clarabel_exponent = _fill_estimates(cases)
  return {
      "benchmark": "tfhull.hull.project_onto_hull vs Wolfe (exact) and cvxpy (CLARABEL, ECOS)",
      "config": dataclasses.asdict(cfg),
      "machine": info,
      "data": {
          "synthetic": "digits-like structured synthetic images, 28x28 = 784-d in [0, 1] "
                       "(benchmarks.hull_solver.structured_images); queries: fresh images",
          "digits": "sklearn digits / 16, 64-d, stratified 1347 train / 450 test",
      },
      "cases": cases,
      "scaling": {
          "tfhull_log_time_vs_log_n_slope": slope,
          "clarabel_log_time_vs_log_n_slope": clarabel_exponent,
          "sizes": [c["n"] for c in synth],
          "tfhull_s_per_query": [c["tfhull"]["s_per_query"] for c in synth],
      },
      "targets": _targets(cases, slope),
      "issue12": run_issue12(cfg.issue12) if cfg.issue12 is not None else None,
      "methods": run_methods(cfg.methods),
      "load_average_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
      "total_wall_s": time.perf_counter() - t_start,
  }


def run_methods(cfg) -> Optional[dict[str, Any]]:
  """Issue 17: column generation vs projected gradient (benchmarks/hull_methods.py)."""
  if cfg is None:
    return None
  from benchmarks import hull_methods  # pylint: disable=g-import-not-at-top
  return hull_methods.run_methods(cfg)


# ------------------------------------------------------------------------------------------------
# Issue 12: side-by-side speed levers, low dimension, per-class, large n, JAX, peers.

# Today's (pre-issue-12) speed path, kept runnable as the baseline: no compaction of converged
# queries, exact p-space refreshes in the restricted solve, up to 4,096 inner steps per pass,
# m = 16 atoms per pass into K = 128 slots at every n.
BASELINE_OPTIONS = {"compact": False, "gram_state": False, "max_inner_steps": 4096,
                    "atoms_per_pass": 16, "working_set_size": 128}


@dataclasses.dataclass(frozen=True)
class Issue12Config:
  """Sizes of the issue-12 section (`quick_issue12()` is the smoke test's)."""
  n: int = 10000             # Training points of the main case (d = 784).
  queries: int = 256         # One batch.
  n_large: int = 60000       # The large-n case (mean passes).
  pca_dim: int = 64          # The low-dimensional case: PCA of the main case.
  classes: int = 10
  wolfe_queries: int = 8     # Peers: numpy float64 Wolfe ...
  clarabel_queries: int = 1  # ... and cvxpy+Clarabel (tens of seconds per query at n = 10k).
  sketch_queries: int = 2    # ... and the author's sketching method (seconds per query).
  jax: bool = True           # Re-time the main case under KERAS_BACKEND=jax (subprocess).
  baseline: bool = True      # Re-time today's solver (BASELINE_OPTIONS).
  seed: int = 0


def quick_issue12() -> Issue12Config:
  return Issue12Config(n=1000, queries=32, n_large=3000, wolfe_queries=2, clarabel_queries=0,
                       sketch_queries=2, jax=False, baseline=True)


def _timed_solve(points, queries, repeat_warm: bool = True, **options):
  """(result, seconds) of project_onto_hull; a first identical call compiles every shape."""
  from tfhull.hull import project_onto_hull  # pylint: disable=g-import-not-at-top
  b = len(queries)
  if repeat_warm:
    project_onto_hull(points, queries, batch_size=b, **options)
  t0 = time.perf_counter()
  res = project_onto_hull(points, queries, batch_size=b, **options)
  return res, time.perf_counter() - t0


def time_pricing_pass(points: np.ndarray, queries: np.ndarray, repeats: int = 5) -> float:
  """Seconds of one full pricing pass (B x n x d float32 matmul + top-m, as the solver chunks it),
  median of `repeats`, compiled first."""
  from tfhull.hull import backend  # pylint: disable=g-import-not-at-top
  from tfhull.hull import pricing  # pylint: disable=g-import-not-at-top
  from tfhull.hull import solver  # pylint: disable=g-import-not-at-top
  cfg = solver.SolverConfig()
  a_c = (points - points.mean(0)).astype(np.float32)
  pricer = pricing.Pricer(a_c, cfg, min(cfg.certify_candidates, len(points)), None)
  w = (queries - points.mean(0)).astype(np.float32)
  times = []
  with backend.full_precision_matmuls():
    pricer(w, nearest=False)
    for _ in range(repeats):
      t0 = time.perf_counter()
      pricer(w, nearest=False)
      times.append(time.perf_counter() - t0)
  return float(np.median(times))


def pca(points: np.ndarray, queries: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
  """Projections of points and queries on the points' top `dim` principal axes (float32)."""
  mu = points.mean(0, dtype=np.float64)
  _, _, vt = np.linalg.svd(points - mu, full_matrices=False)
  basis = vt[:dim].T
  return ((points - mu) @ basis).astype(np.float32), ((queries - mu) @ basis).astype(np.float32)


def _stats(res, seconds: float, batches: int = 1) -> dict[str, Any]:
  q = res.distance.size
  return {"queries": q, "s": seconds, "ms_per_query": 1e3 * seconds / q,
          "s_per_batch": seconds / batches,
          **res.counts(), **solver_stats.solver_stats(res)}


def _rel_agreement(d: np.ndarray, ref: np.ndarray, floor: float) -> Optional[float]:
  keep = ref > floor
  return float(np.max(np.abs(d[keep] - ref[keep]) / ref[keep])) if keep.any() else None


def _jax_subprocess(n: int, queries: int, seed: int) -> dict[str, Any]:
  """The main case re-timed in a KERAS_BACKEND=jax subprocess (same data, same warm-up)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  code = (
      "import json, sys, time\n"
      "from benchmarks import hull_solver as h\n"
      f"a, _ = h.structured_images({n}, seed={seed}, stream=0)\n"
      f"x, _ = h.structured_images({queries}, seed={seed}, stream=1)\n"
      "res, s = h._timed_solve(a, x)\n"
      "print(json.dumps(h._stats(res, s)))\n")
  env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                        text=True, timeout=1800, check=False)
  if proc.returncode != 0:
    return {"status": "failed: " + proc.stderr[-500:]}
  return {"status": "measured", **json.loads(proc.stdout.strip().splitlines()[-1])}


def time_sketching(points, queries, d_star) -> dict[str, Any]:
  """The author's sketching method (benchmarks/peers/sketching.py) as published (MATLAB
  settings) and with the data centred (our change), one query at a time, against Wolfe's d_star."""
  from benchmarks.peers import sketching  # pylint: disable=g-import-not-at-top
  out = {}
  for name, centre in (("sketching_2102.10502", False), ("sketching_2102.10502_centred", True)):
    if not len(queries):
      out[name] = {"status": "not run (sketch_queries = 0)"}
      continue
    t0 = time.perf_counter()
    runs = [sketching.sketch_project(points, q, sketching.SketchConfig(centre=centre))
            for q in queries]
    s = (time.perf_counter() - t0) / len(queries)
    d = np.array([r.distance for r in runs])
    out[name] = {"queries": len(queries), "ms_per_query": 1e3 * s,
                 "max_rel_diff_wolfe": _rel_agreement(d, d_star[:len(queries)], 1e-9),
                 "max_fw_gap_over_d2": float(max(r.gap / r.distance ** 2 for r in runs)),
                 "mean_iterations": float(np.mean([r.iterations for r in runs])),
                 "max_subspace_size": int(max(max(r.support_sizes) for r in runs))}
  return out


def run_issue12(cfg: Issue12Config) -> dict[str, Any]:
  """The issue-12 measurements, each peer re-timed in this run; targets with met flags."""
  from tfhull.hull import per_class_distances  # pylint: disable=g-import-not-at-top
  from tfhull.hull import reference  # pylint: disable=g-import-not-at-top
  out: dict[str, Any] = {"config": dataclasses.asdict(cfg)}
  points, labels = structured_images(cfg.n, seed=cfg.seed, stream=0)
  queries, qlabels = structured_images(cfg.queries, seed=cfg.seed, stream=1)
  b = len(queries)

  _log("issue12: d=784 n=%d, %d queries: pricing pass, tfhull", cfg.n, b)
  gemm = time_pricing_pass(points, queries)
  res, secs = _timed_solve(points, queries)
  main = _stats(res, secs)
  main["pricing_pass_s"] = gemm
  main["batch_over_passes_x_gemm"] = secs / (res.passes.max() * gemm)
  out["d784"] = main
  if cfg.baseline:
    _log("issue12: baseline (today's solver)")
    base_res, base_s = _timed_solve(points, queries, **BASELINE_OPTIONS)
    out["d784_baseline"] = _stats(base_res, base_s)
    out["d784_baseline"]["options"] = BASELINE_OPTIONS
    out["d784_speedup_vs_baseline"] = base_s / secs
    out["d784_max_rel_diff_vs_baseline"] = _rel_agreement(res.distance, base_res.distance, 1e-9)

  _log("issue12: peers")
  k = min(cfg.wolfe_queries, b)
  t0 = time.perf_counter()
  wolfe = reference.project_batch(points, queries[:k])
  wolfe_s = (time.perf_counter() - t0) / max(k, 1)
  d_star = np.array([e.distance for e in wolfe])
  peers = {"numpy_wolfe": {"queries": k, "ms_per_query": 1e3 * wolfe_s,
                           "max_rel_diff_tfhull": _rel_agreement(res.distance[:k], d_star, 1e-9)}}
  if cfg.clarabel_queries:
    try:
      c = time_cvxpy("CLARABEL", points, queries[:cfg.clarabel_queries], d_star)
      peers["cvxpy_clarabel"] = {"queries": c["queries"], "ms_per_query": 1e3 * c["s_per_query"],
                                 "basis": c["s_per_query_basis"],
                                 "max_rel_diff_wolfe": c["max_rel_error_vs_exact"]}
    except (ImportError, RuntimeError) as e:
      peers["cvxpy_clarabel"] = {"status": f"failed: {e}"}
  else:
    peers["cvxpy_clarabel"] = {"status": "not run (clarabel_queries = 0)"}
  peers.update(time_sketching(points, queries[:min(cfg.sketch_queries, k)], d_star))
  out["peers"] = peers

  _log("issue12: PCA-%d, a quarter of the queries inside", cfg.pca_dim)
  p64, q64 = pca(points, queries, cfg.pca_dim)
  rng = np.random.default_rng(cfg.seed)
  n_in = b // 4
  mix = rng.dirichlet(np.ones(20), size=n_in)
  inside = np.einsum("qk,qkd->qd", mix, p64[rng.integers(0, len(p64), (n_in, 20))])
  q64 = np.concatenate([q64[:b - n_in], inside.astype(np.float32)])
  res64, secs64 = _timed_solve(p64, q64)
  low = _stats(res64, secs64)
  low["inside_built"] = n_in
  low["inside_built_verdict_inside"] = int(np.sum(res64.inside[b - n_in:]))
  out["d64"] = low

  _log("issue12: per-class hulls (%d classes)", cfg.classes)
  per_class_distances(points, labels, queries, qlabels, num_classes=cfg.classes,
                      batch_size=b)  # Compiles every class's shapes.
  t0 = time.perf_counter()
  per_class_distances(points, labels, queries, qlabels, num_classes=cfg.classes, batch_size=b)
  pc_s = time.perf_counter() - t0
  out["per_class"] = {"s": pc_s, "over_one_hull": pc_s / secs}

  _log("issue12: n=%d", cfg.n_large)
  big, _ = structured_images(cfg.n_large, seed=cfg.seed, stream=0)
  res_big, secs_big = _timed_solve(big, queries, repeat_warm=False)
  out["n_large"] = {"n": cfg.n_large, **_stats(res_big, secs_big)}
  del big

  if cfg.jax:
    _log("issue12: JAX backend (subprocess)")
    jx = _jax_subprocess(cfg.n, cfg.queries, cfg.seed)
    out["d784_jax"] = jx
    if jx.get("status") == "measured":
      out["jax_over_tensorflow"] = jx["s"] / secs

  def target(value, limit, basis):
    return {"value": value, "target": basis, "met": None if value is None else bool(value <= limit)}
  t = {
      "batch_over_passes_x_gemm": target(main["batch_over_passes_x_gemm"], 4.0, "<= 4"),
      "d64_over_d784_ms_per_query": target(low["ms_per_query"] / main["ms_per_query"], 2.0,
                                           "<= 2"),
      "d64_all_converged": {"value": low["unconverged"], "target": "0 unconverged",
                            "met": low["unconverged"] == 0},
      "d64_inside_queries_inside": {"value": low["inside_built_verdict_inside"],
                                    "target": f"== {n_in}",
                                    "met": low["inside_built_verdict_inside"] == n_in},
      "per_class_over_one_hull": target(out["per_class"]["over_one_hull"], 2.0, "<= 2"),
      "n_large_mean_passes": target(out["n_large"]["mean_passes"], 6.0, "<= 6"),
      "peers_agree_numpy_wolfe": target(peers["numpy_wolfe"]["max_rel_diff_tfhull"], 1e-4,
                                        "<= 1e-4"),
      "peers_agree_sketching_centred": target(
          peers["sketching_2102.10502_centred"].get("max_rel_diff_wolfe"), 1e-4, "<= 1e-4"),
  }
  if cfg.baseline:
    sp = out["d784_speedup_vs_baseline"]
    t["speedup_vs_baseline"] = {"value": sp, "target": ">= 5", "met": bool(sp >= 5)}
  if "jax_over_tensorflow" in out:
    t["jax_over_tensorflow"] = target(out["jax_over_tensorflow"], 1.2, "<= 1.2")
  out["targets"] = t
  return out


# ------------------------------------------------------------------------------------------------
# Output.


def _fmt(v, spec: str = ".3g") -> str:
  if v is None:
    return "-"
  if isinstance(v, bool):
    return "yes" if v else "no"
  if isinstance(v, (int, float)):
    return format(v, spec)
  return str(v)


def format_table(report: dict[str, Any]) -> str:
  """A readable summary of `run_benchmark`'s report."""
  m = report["machine"]
  lines = [f"Machine: {m['cpu']} ({m['cpu_count']} CPUs), Python {m['python']}, Keras backend "
           f"{m['keras_backend']}, accelerators {m['accelerators'] or 'none'}", ""]
  head = (f"{'case':<16}{'n':>7}{'d':>5} | {'tfhull ms/q':>11}{'warmup s':>10}{'passes':>7}"
          f"{'certified':>10}{'max gap':>9} | {'max rel err':>11}{'viol':>5} | "
          f"{'Clarabel s/q':>13}{'x':>8} | {'ECOS s/q':>9}{'x':>8}")
  lines += [head, "-" * len(head)]
  for c in report["cases"]:
    t, e, cv = c["tfhull"], c["exact_wolfe"], c["cvxpy"]

    def base(solver):
      entry = cv[solver]
      if entry["status"] == "measured":
        return _fmt(entry["s_per_query"]), _fmt(c[f"speedup_vs_{solver.lower()}"], ".0f")
      if "estimated_s_per_query" in entry:
        return ("~" + _fmt(entry["estimated_s_per_query"]) + "*",
                "~" + _fmt(c[f"speedup_vs_{solver.lower()}"], ".0f") + "*")
      return "-", "-"
    cl, ec = base("CLARABEL"), base("ECOS")
    lines.append(
        f"{c['case']:<16}{c['n']:>7}{c['d']:>5} | {1e3 * t['s_per_query']:>11.2f}"
        f"{t['warmup_s']:>10.1f}{t['mean_passes']:>7.1f}"
        f"{t['fraction_certified_outside']:>10.2f}{_fmt(t['max_rel_gap'], '.1e'):>9} | "
        f"{_fmt(e['max_rel_error'], '.1e'):>11}{e['interval_violations']:>5} | "
        f"{cl[0]:>13}{cl[1]:>8} | {ec[0]:>9}{ec[1]:>8}")
  lines.append("* not run: estimated from the n-scaling (see the JSON's status fields).")
  s = report["scaling"]
  lines.append(f"tfhull time vs n: slope of log(s/query) vs log(n) = "
               f"{_fmt(s['tfhull_log_time_vs_log_n_slope'], '.2f')} over n = {s['sizes']}")
  lines.append("Targets:")
  for key, tgt in report["targets"].items():
    lines.append(f"  {key}: {_fmt(tgt['value'])} (target {tgt['target']}): "
                 f"{'-' if tgt['met'] is None else ('met' if tgt['met'] else 'NOT met')}")
  i12 = report.get("issue12")
  if i12:
    lines += ["", "Issue 12 (one run; every peer re-timed here):",
              f"{'case':<22}{'ms/query':>10}{'passes':>8}{'max':>5}{'out':>5}{'in':>5}"
              f"{'undet':>6}{'unconv':>7}"]
    for key in ("d784", "d784_baseline", "d64", "n_large", "d784_jax"):
      c = i12.get(key)
      if not c or "ms_per_query" not in c:
        continue
      lines.append(f"{key:<22}{c['ms_per_query']:>10.2f}{c['mean_passes']:>8.2f}"
                   f"{c['max_passes']:>5}{c['outside']:>5}{c['inside']:>5}{c['undetermined']:>6}"
                   f"{c['unconverged']:>7}")
    lines.append(f"one pricing pass (B x n x d): {i12['d784']['pricing_pass_s']:.3f} s; "
                 f"per-class / one hull: {i12['per_class']['over_one_hull']:.2f}")
    for name, p in i12["peers"].items():
      lines.append(f"peer {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in p.items()))
    for key, tgt in i12["targets"].items():
      lines.append(f"  {key}: {_fmt(tgt['value'])} (target {tgt['target']}): "
                   f"{'-' if tgt['met'] is None else ('met' if tgt['met'] else 'NOT met')}")
  lines.append(f"Total wall time: {report['total_wall_s']:.0f} s")
  return "\n".join(lines)


def config_from_flags() -> BenchConfig:
  if FLAGS.quick:
    cfg = quick_config(FLAGS.seed)
    return cfg if FLAGS.issue12 else dataclasses.replace(cfg, issue12=None)
  return BenchConfig(sizes=tuple(int(s) for s in FLAGS.sizes) if FLAGS.cases else (),
                     digits=FLAGS.digits and FLAGS.cases,
                     issue12=Issue12Config(seed=FLAGS.seed) if FLAGS.issue12 else None,
                     queries=FLAGS.queries,
                     baseline_queries=FLAGS.baseline_queries,
                     reference_queries=FLAGS.reference_queries, batch_size=FLAGS.batch_size,
                     seed=FLAGS.seed, clarabel_max_n=FLAGS.clarabel_max_n,
                     ecos_max_n=FLAGS.ecos_max_n, methods=_methods_config())


def _methods_config():
  if not FLAGS.methods:
    return None
  from benchmarks import hull_methods  # pylint: disable=g-import-not-at-top
  return hull_methods.MethodsConfig(seed=FLAGS.seed)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  report = run_benchmark(config_from_flags())
  if FLAGS.json:
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
  else:
    print(format_table(report))


if __name__ == "__main__":
  define_flags()
  app.run(main)
