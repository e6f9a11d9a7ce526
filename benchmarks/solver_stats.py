"""Statistics of one `project_onto_hull` run, shared by the solver benchmarks (numpy only, so
`gpu_check` runs where TensorFlow is absent)."""

from typing import Any

import numpy as np


def solver_stats(res) -> dict[str, Any]:
  """Certificate, convergence and work statistics of a `HullResult`."""
  outside = res.outside
  return {
      "max_rel_gap": float(np.max(res.rel_gap[outside])) if outside.any() else None,
      "median_rel_gap": float(np.median(res.rel_gap)),
      "fraction_certified_outside": float(np.mean(outside)),
      "fraction_inside": float(np.mean(res.inside)),
      "fraction_converged": float(np.mean(res.converged)),
      "mean_passes": float(np.mean(res.passes)),
      "max_passes": int(np.max(res.passes)),
      "mean_iterations": float(np.mean(res.iterations)),
      "median_nnz": float(np.median(res.nnz)),
      "max_nnz": int(np.max(res.nnz)),
      "median_ratio_to_nearest": float(np.median(res.ratio_to_nearest)),
  }
