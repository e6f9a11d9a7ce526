r"""The two hull methods side by side (issue 17): column generation vs projected gradient.

  python -m benchmarks.hull_solver --json --nocases --noissue12     # only this section
  python -m benchmarks.hull_methods --json                          # the same, standalone
  python -m benchmarks.hull_methods --quick --json                  # n = 2,000, smoke
  python -m benchmarks.hull_methods --json --queries=8              # fewer queries per case

Cases: d = 784 (structured synthetic images, `hull_solver.structured_images`) and d = 64 (their
PCA), n = 10,000 and 60,000; queries: fresh images, a quarter replaced by Dirichlet mixtures of
10 training points (inside the hull). Per method: CPU seconds (time.process_time, compilation
excluded by a warm-up solve of the same shapes; CPU time, not wall, because this machine is
shared), passes over the points, iterations, full-size GEMM equivalents (column generation: its
pricing passes; projected gradient: passes + iterations x (2 + 1/check_every)), points screened
(projected gradient), and both as multiples of one pricing GEMM (its CPU seconds, measured here).
"""

import dataclasses
import json
import os
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from benchmarks import solver_stats


@dataclasses.dataclass(frozen=True)
class MethodsConfig:
  dims: Sequence[int] = (784, 64)
  sizes: Sequence[int] = (10000, 60000)
  queries: int = 16          # One batch per method and case (CPU time: both methods are slow
                             # per query at n = 60k on 2 cores).
  inside_fraction: float = 0.25
  rel_tol: float = 1e-4
  seed: int = 0
  # Above this n, projected gradient runs only `capped_iterations` iterations (one program call)
  # on this CPU: its CPU seconds per iteration are measured, and the full solve is estimated from
  # the iterations the same d needed at the largest n not above it (labelled as an estimate).
  full_pg_max_n: int = 10000
  capped_iterations: int = 64


def quick_methods() -> MethodsConfig:
  return MethodsConfig(dims=(784, 64), sizes=(2000, 4000), queries=8, full_pg_max_n=2000,
                       capped_iterations=16)


def _data(d: int, n: int, cfg: MethodsConfig):
  from benchmarks import hull_solver  # pylint: disable=g-import-not-at-top
  points, _ = hull_solver.structured_images(n, seed=cfg.seed, stream=0)
  queries, _ = hull_solver.structured_images(cfg.queries, seed=cfg.seed, stream=1)
  rng = np.random.default_rng(cfg.seed)
  k = int(round(cfg.inside_fraction * cfg.queries))
  if k:
    mix = rng.dirichlet(np.ones(10), size=k)
    queries[:k] = np.einsum("qk,qkd->qd", mix, points[rng.integers(0, n, (k, 10))])
  if d != points.shape[1]:
    points, queries = hull_solver.pca(points, queries, d)
  return points, queries


def _cpu(fn):
  t0, w0 = time.process_time(), time.perf_counter()
  out = fn()
  return out, time.process_time() - t0, time.perf_counter() - w0


def pricing_cpu_s(points: np.ndarray, queries: np.ndarray, repeats: int = 3) -> float:
  """CPU seconds of one full pricing pass (B x n x d matmul + top-m), compiled first; median."""
  from tfhull.hull import backend  # pylint: disable=g-import-not-at-top
  from tfhull.hull import pricing  # pylint: disable=g-import-not-at-top
  from tfhull.hull import solver  # pylint: disable=g-import-not-at-top
  cfg = solver.SolverConfig()
  a_c = (points - points.mean(0)).astype(np.float32)
  pricer = pricing.Pricer(a_c, cfg, min(cfg.certify_candidates, len(points)), None)
  w = (queries - points.mean(0)).astype(np.float32)
  with backend.full_precision_matmuls():
    pricer(w, nearest=False)
    return float(np.median([_cpu(lambda: pricer(w, nearest=False))[1] for _ in range(repeats)]))


def run_case(d: int, n: int, cfg: MethodsConfig) -> dict[str, Any]:
  from tfhull.hull import project_onto_hull  # pylint: disable=g-import-not-at-top
  from tfhull.hull import projected_gradient as pg  # pylint: disable=g-import-not-at-top
  points, queries = _data(d, n, cfg)
  b = len(queries)
  gemm = pricing_cpu_s(points, queries)
  out: dict[str, Any] = {"d": d, "n": n, "queries": b, "pricing_gemm_cpu_s": gemm}
  # Warm-ups compile every shape; then the timed solves.
  project_onto_hull(points, queries, batch_size=b, rel_tol=cfg.rel_tol, progress=False)
  cg, cpu, wall = _cpu(lambda: project_onto_hull(points, queries, batch_size=b,
                                                 rel_tol=cfg.rel_tol, progress=False))
  out["column_generation"] = {
      "cpu_s": cpu, "wall_s": wall, **cg.counts(), **solver_stats.solver_stats(cg),
      "gemm_equivalents": float(np.max(cg.passes)), "cpu_over_gemm": cpu / gemm}
  capped = n > cfg.full_pg_max_n
  opts = dict(iterations_per_pass=cfg.capped_iterations, max_passes=2) if capped else {}
  # Warm-up on b training points (distance 0, settled by the first certificate): the same
  # shapes, so every program compiles, without a second full solve.
  pg.solve(points, points[:b], batch_size=b, rel_tol=cfg.rel_tol, **opts)
  (res, stats), cpu, wall = _cpu(lambda: pg.solve(points, queries, batch_size=b,
                                                  rel_tol=cfg.rel_tol, **opts))
  per_it = 2.0 + 1.0 / pg.PGConfig.check_every
  out["projected_gradient"] = {
      "capped": capped, "iterations_cap": cfg.capped_iterations if capped else None,
      "cpu_s_per_iteration": cpu / max(int(np.max(res.iterations)), 1),
      "cpu_s": cpu, "wall_s": wall, **res.counts(), **solver_stats.solver_stats(res),
      "max_iterations": int(np.max(res.iterations)),
      "gemm_equivalents": float(np.max(res.passes) + np.max(res.iterations) * per_it),
      "cpu_over_gemm": cpu / gemm, "programs": stats.programs,
      "mean_screened_fraction": float(np.mean(stats.screened_fraction)),
      "mean_screened_fraction_outside": (float(np.mean(stats.screened_fraction[res.outside]))
                                         if res.outside.any() else None)}
  # Distances compared where both certify "outside": inside, both distances are below abs_tol and
  # their ratio is rounding (it read 0.999 at d = 784, n = 10k).
  both = cg.converged & res.converged & cg.outside & res.outside
  out["agreement"] = {
      "same_verdicts": bool(np.array_equal(cg.verdict, res.verdict)),
      "max_rel_diff": (float(np.max(np.abs(res.distance[both] - cg.distance[both])
                                    / cg.distance[both])) if both.any() else None),
      "intervals_overlap": bool(np.all((res.lower_bound <= cg.upper_bound * (1 + 1e-9))
                                       & (cg.lower_bound <= res.upper_bound * (1 + 1e-9))))}
  out["cpu_ratio_pg_over_cg"] = out["projected_gradient"]["cpu_s"] / max(
      out["column_generation"]["cpu_s"], 1e-9)
  return out


def run_methods(cfg: Optional[MethodsConfig] = None) -> dict[str, Any]:
  """Both methods on every (d, n) case; JSON-ready."""
  from tfhull.hull import backend  # pylint: disable=g-import-not-at-top
  from tfhull.hull import projected_gradient as pg  # pylint: disable=g-import-not-at-top
  cfg = cfg or MethodsConfig()
  cases = []
  for d in cfg.dims:
    full = None
    for n in sorted(cfg.sizes):
      print(f"hull_methods: d={d} n={n} ({cfg.queries} queries)", file=sys.stderr, flush=True)
      case = run_case(d, n, cfg)
      p = case["projected_gradient"]
      if not p["capped"]:
        full = case
      elif full is not None:  # Estimate: the uncapped case's iterations at this n's cost.
        its = full["projected_gradient"]["max_iterations"]
        est = its * p["cpu_s_per_iteration"]
        p["estimate"] = {"from_case_n": full["n"], "iterations": its, "cpu_s": est,
                         "cpu_over_gemm": est / case["pricing_gemm_cpu_s"],
                         "cpu_ratio_pg_over_cg": est / max(case["column_generation"]["cpu_s"],
                                                           1e-9)}
      cases.append(case)
  return {"config": dataclasses.asdict(cfg), "keras_backend": backend.name(),
          "device_kind": pg.device_kind(),
          "auto_picks": {f"{c['d']}x{c['n']}": pg.choose_method(c["n"], c["d"]) for c in cases},
          "timing": "CPU seconds (time.process_time), compilation excluded; wall clock also "
                    "given but unreliable on a shared machine",
          "cases": cases}


def main() -> None:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  cfg = quick_methods() if "--quick" in sys.argv else MethodsConfig()
  for arg in sys.argv[1:]:  # --queries=N: fewer queries per case (CPU time scales with them).
    if arg.startswith("--queries="):
      cfg = dataclasses.replace(cfg, queries=int(arg.split("=", 1)[1]))
  report = run_methods(cfg)
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  main()
