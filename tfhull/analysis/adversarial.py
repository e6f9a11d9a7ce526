"""Adversarial perturbations against the hull geometry of the clean samples."""

import numpy as np


def perturbation_vs_hull(records: dict, hull_distance: np.ndarray, nearest_distance: np.ndarray,
                         norm: str) -> dict:
  """Minimal perturbation of each attacked test sample beside its d_hull and d_NN (pixel space).

  Args:
    records: an attack artifact's `adversarial.npz` arrays.
    hull_distance, nearest_distance: (m,) d_hull and d_NN of every test sample (the hull step's
      test split in pixel space, in test-split order).
    norm: "2" or "inf": which minimal-perturbation rows (`min_pgd`) to report.
  Returns:
    {"norm", "source" (k,), "perturbation" (k,) its L2 length (the metric of d_hull and d_NN),
     "perturbation_norm" (k,) its size in the attack's norm, "d_hull" (k,), "d_nn" (k,),
     "spearman_d_hull", "fraction_below_d_hull", "fraction_below_d_nn"} over the samples whose
    label the search flipped (initially correct ones).
  """
  rows = (records["attack"] == "min_pgd") & (records["norm"] == norm) & records["success"]
  source = records["source_index"][rows]
  pert = records["l2"][rows].astype(np.float64)
  d_hull, d_nn = hull_distance[source], nearest_distance[source]
  out = {"norm": norm, "source": source, "perturbation": pert,
         "perturbation_norm": records["l2" if norm == "2" else "linf"][rows].astype(np.float64),
         "d_hull": d_hull, "d_nn": d_nn,
         "spearman_d_hull": _spearman(pert, d_hull),
         "fraction_below_d_hull": float(np.mean(pert < d_hull)) if len(pert) else None,
         "fraction_below_d_nn": float(np.mean(pert < d_nn)) if len(pert) else None}
  return out


def _spearman(a, b):
  if len(a) < 3:
    return None
  ra = np.argsort(np.argsort(a)).astype(np.float64)
  rb = np.argsort(np.argsort(b)).astype(np.float64)
  return float(np.corrcoef(ra, rb)[0, 1])
