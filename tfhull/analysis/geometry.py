"""Summaries of hull measurements: d_hull, d_NN, their ratio, support size and class mix.

All functions take the arrays of one hull measurement (a query split in one space, as saved by
the hull step) and return plain numbers or arrays.
"""

import dataclasses
from typing import Mapping, Optional

import numpy as np


def own_class_weight(support: np.ndarray, weights: np.ndarray, train_labels: np.ndarray,
                     query_labels: np.ndarray) -> np.ndarray:
  """(q,) fraction of each projection's convex weight on training points of the query's class.

  Args:
    support: (q, k) int indices into the training set, -1 padded.
    weights: (q, k) convex weights (rows sum to 1).
    train_labels: (n,) labels of the training points; query_labels: (q,).
  """
  valid = support >= 0
  labels = np.where(valid, train_labels[np.where(valid, support, 0)], -1)
  same = valid & (labels == np.asarray(query_labels)[:, None])
  return (np.where(same, weights, 0.0).sum(1) / np.maximum(np.where(valid, weights, 0).sum(1),
                                                           1e-30)).astype(np.float32)


def quantiles(a) -> dict:
  """Median, 10th/90th percentiles and mean of the finite values of `a`; {} when none."""
  a = np.asarray(a, np.float64)
  a = a[np.isfinite(a)]
  if not a.size:
    return {}
  return {"median": float(np.median(a)), "q10": float(np.percentile(a, 10)),
          "q90": float(np.percentile(a, 90)), "mean": float(a.mean())}


@dataclasses.dataclass
class HullStats:
  """JSON-ready summary of one hull measurement."""
  queries: int
  fraction_outside: float          # certified outside (lower bound > 0).
  fraction_inside: float           # distance below the absolute tolerance.
  distance: dict                   # quantiles of d_hull.
  nearest_distance: dict           # quantiles of d_NN.
  ratio: dict                      # quantiles of d_hull / d_NN.
  nnz: dict                        # quantiles of the number of training points in the projection.
  own_class_weight: dict           # quantiles of the projection weight on the query's class.
  own_class_distance: Optional[dict] = None
  nearest_other_class_distance: Optional[dict] = None
  fraction_closer_to_own_class: Optional[float] = None

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def hull_stats(arrays: Mapping[str, np.ndarray], train_labels: np.ndarray) -> HullStats:
  """Summary of one hull measurement (the arrays of a `hull_*.npz`)."""
  d, nn = arrays["distance"], arrays["nearest_distance"]
  ratio = d / np.maximum(nn, 1e-30)
  labels = arrays.get("query_labels")
  mix = (own_class_weight(arrays["support"], arrays["weights"], train_labels, labels)
         if labels is not None else np.array([]))
  stats = HullStats(
      queries=int(d.size), fraction_outside=float(np.mean(arrays["outside"])) if d.size else 0.0,
      fraction_inside=float(np.mean(arrays["inside"])) if d.size else 0.0,
      distance=quantiles(d), nearest_distance=quantiles(nn), ratio=quantiles(ratio),
      nnz=quantiles(arrays["nnz"]), own_class_weight=quantiles(mix))
  if "own_class_distance" in arrays:
    own, other = arrays["own_class_distance"], arrays["nearest_other_class_distance"]
    stats.own_class_distance = quantiles(own)
    stats.nearest_other_class_distance = quantiles(other)
    stats.fraction_closer_to_own_class = float(np.mean(own < other))
  return stats
