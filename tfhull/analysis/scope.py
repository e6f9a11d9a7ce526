"""Scope of the training data: where a query lies that is outside the training hull.

Following 2112.03411 / 2203.10447 (extrapolation = outside the hull but within the scope of the
training data), a query is one of:
  inside        not certified outside the hull (verdict inside, or undetermined: rare),
  within scope  certified outside the hull, but every coordinate within the training set's range
                [min_i, max_i] (+ a tolerance), "box" scope; optionally (scope "pca") every
                coordinate along the training set's principal directions within its range there,
  out of scope  certified outside the hull and outside that range.
The per-coordinate range is the box around the training set (the hull lies in it, so inside =>
within scope). The mean |x - projection| per coordinate shows where the residuals lie (an image in
pixel space).
"""

import dataclasses

import numpy as np

CATEGORIES = ("inside the hull", "outside the hull, within scope", "outside scope")


@dataclasses.dataclass(frozen=True)
class Scope:
  """Per query: 0 inside the hull, 1 outside but within scope, 2 outside scope (`CATEGORIES`)."""
  category: np.ndarray          # (q,) int8, box scope.
  category_pca: np.ndarray      # (q,) int8, principal-direction scope.
  coordinates_outside: np.ndarray  # (q,) coordinates outside the box range.
  mean_abs_residual: np.ndarray  # (d,) mean over certified-outside queries of |x - projection|.

  def fractions(self, pca: bool = False) -> dict:
    cat = self.category_pca if pca else self.category
    return {name: float(np.mean(cat == i)) if len(cat) else None
            for i, name in enumerate(CATEGORIES)}


def box_range(train: np.ndarray):
  """(lo (d,), hi (d,)) the per-coordinate range of the training points."""
  t = np.asarray(train, np.float64).reshape(len(train), -1)
  return t.min(0), t.max(0)


def scope(train: np.ndarray, queries: np.ndarray, outside: np.ndarray, projection: np.ndarray,
          *, tol: float = 1e-6, pca_rank_tol: float = 1e-9) -> Scope:
  """Scope category of each query (see the module docstring).

  Args:
    train: (n, d) training points; queries: (q, d); outside: (q,) bool certified outside the
      training hull; projection: (q, d) the queries' projections onto it.
    tol: slack of the range tests, relative to each coordinate's range (at least 1e-12 absolute).
    pca_rank_tol: principal directions with singular value below this fraction of the largest are
      the null space: the training data has range 0 there.
  """
  t = np.asarray(train, np.float64).reshape(len(train), -1)
  x = np.asarray(queries, np.float64).reshape(len(queries), -1)
  outside = np.asarray(outside, bool)
  lo, hi = box_range(t)
  slack = tol * np.maximum(hi - lo, 1.0)
  off = np.sum((x < lo - slack) | (x > hi + slack), axis=1)
  cat = np.where(~outside, 0, np.where(off == 0, 1, 2)).astype(np.int8)
  mean = t.mean(0)
  ev, vecs = np.linalg.eigh((t - mean).T @ (t - mean))  # every direction, null space included.
  c_tr, c_x = (t - mean) @ vecs, (x - mean) @ vecs
  plo, phi = c_tr.min(0), c_tr.max(0)
  pslack = tol * np.maximum(phi - plo, 1.0) + pca_rank_tol * np.sqrt(max(ev.max(), 1e-300))
  in_pca = np.all((c_x >= plo - pslack) & (c_x <= phi + pslack), axis=1)
  cat_pca = np.where(~outside, 0, np.where(in_pca, 1, 2)).astype(np.int8)
  res = np.abs(x - np.asarray(projection, np.float64).reshape(x.shape))
  mar = res[outside].mean(0) if outside.any() else np.zeros(x.shape[1])
  return Scope(category=cat, category_pca=cat_pca, coordinates_outside=off.astype(np.int64),
               mean_abs_residual=mar)
