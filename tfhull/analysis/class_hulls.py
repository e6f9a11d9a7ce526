"""Certified distance between the convex hulls of two point sets (e.g. two classes).

  r = hull_pair_distance(A, B)        # min |A^T alpha - B^T beta| over two simplices
  r.lower_bound <= distance <= r.upper_bound, r.verdict ("disjoint", "intersect", "undetermined")
  m = class_hull_distances(points, labels)   # (c, c) matrices for every pair of classes

Column generation on the product of simplices: the working sets S_A, S_B start from the points
extreme along the direction between the class means; the restricted problem is solved exactly on
the working sets (Lawson-Hanson NNLS by default, or `tfhull.hull.project_onto_hull` on the
differences {a - b : a in S_A, b in S_B} projected from the origin); its solution x_A - x_B gives the direction w = (x_A -
x_B) / |x_A - x_B| and a full pass over both sets prices them: every a has <w, a> >= min_A <w, a>
and every b has <w, b> <= max_B <w, b>, so L = min_A <w, a> - max_B <w, b> is a lower bound (the
hyperplane <w, .> = max_B <w, b> + L/2 separates the hulls when L > 0) and |x_A - x_B| an upper
bound. The m most violating points of each set join the working sets until (U - L) / U <= rel_tol
or U <= abs_tol. L is computed in float64 and lowered by Higham's bound gamma_d |w| max |point|.
Verdicts: "disjoint" when L > 0 (certified, separating hyperplane), "intersect" when U <= abs_tol
(witnessed by the weights: the hulls come within abs_tol), else "undetermined".
"""

import dataclasses
from typing import Optional

import numpy as np

VERDICTS = ("undetermined", "intersect", "disjoint")


@dataclasses.dataclass(frozen=True)
class PairDistance:
  """Distance between conv(A) and conv(B) with its certificate."""
  upper_bound: float          # |A^T alpha - B^T beta|, attained by the weights below.
  lower_bound: float          # certified; > 0 means disjoint hulls.
  verdict: str                # "disjoint", "intersect" or "undetermined".
  alpha_support: np.ndarray   # indices into A with positive weight.
  alpha: np.ndarray           # their weights (sum 1).
  beta_support: np.ndarray
  beta: np.ndarray
  passes: int                 # pricing passes over A and B.


def _points(a, what):
  a = np.asarray(a, np.float64)
  if a.ndim != 2 or not len(a):
    raise ValueError(f"{what} must be a non-empty 2-D array (rows are points), got {a.shape}")
  if not np.all(np.isfinite(a)):
    raise ValueError(f"{what} holds NaN or Inf")
  return a


def _restricted(a, b, abs_tol, how, solver_kwargs):
  """Convex weights (alpha, beta) of the closest points of conv(a) and conv(b) (small sets).

  "nnls": Lawson-Hanson on [a^T, -b^T; rho 1^T, 0; 0, rho 1^T] [alpha; beta] = [0; rho; rho]
  (rho large: the sums hold to ~|r|^2 / rho^2), then normalized; "solver": the hull of the
  differences {a_i - b_j} projected from the origin by `project_onto_hull` (float64).
  """
  if how == "solver":
    from tfhull.hull.solver import project_onto_hull  # pylint: disable=import-outside-toplevel
    d = a.shape[1]
    diff = (a[:, None, :] - b[None, :, :]).reshape(-1, d)
    res = project_onto_hull(diff, np.zeros((1, d)), abs_tol=abs_tol, dtype="float64",
                            progress=False, **solver_kwargs)
    lam = np.zeros(len(diff))
    sup = res.support[0]
    lam[sup[sup >= 0]] = res.weights[0][sup >= 0]
    lam = lam.reshape(len(a), len(b))
    return lam.sum(1), lam.sum(0)
  from scipy import optimize  # pylint: disable=import-outside-toplevel
  n, m = len(a), len(b)
  rho = 1e4 * max(1.0, float(np.abs(np.concatenate([a, b])).max()))
  mat = np.zeros((a.shape[1] + 2, n + m))
  mat[:-2, :n], mat[:-2, n:] = a.T, -b.T
  mat[-2, :n], mat[-1, n:] = rho, rho
  rhs = np.zeros(a.shape[1] + 2)
  rhs[-2:] = rho
  lam, _ = optimize.nnls(mat, rhs, maxiter=50 * (n + m))
  alpha, beta = lam[:n], lam[n:]
  if alpha.sum() <= 0 or beta.sum() <= 0:
    alpha, beta = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
  return alpha / alpha.sum(), beta / beta.sum()


def hull_pair_distance(a, b, *, rel_tol: float = 1e-4, abs_tol: Optional[float] = None,
                       atoms: int = 16, max_passes: int = 50, restricted: str = "nnls",
                       **solver_kwargs) -> PairDistance:
  """Certified distance between the convex hulls of the rows of a (n, d) and b (m, d).

  abs_tol: "intersect" threshold (default 1e-6 x the largest centred point norm).
  restricted: how the working sets' problem is solved, "nnls" (scipy, fast) or "solver"
    (`project_onto_hull` on their differences); the certificate is the same either way.
  **solver_kwargs: passed to `project_onto_hull` for restricted="solver".
  """
  a, b = _points(a, "a"), _points(b, "b")
  if a.shape[1] != b.shape[1]:
    raise ValueError(f"a has {a.shape[1]} dimensions and b {b.shape[1]}; use one space")
  centre = np.concatenate([a, b]).mean(0)
  a, b = a - centre, b - centre
  scale = max(float(np.linalg.norm(np.concatenate([a, b]), axis=1).max()), 1e-300)
  abs_tol = 1e-6 * scale if abs_tol is None else float(abs_tol)
  d = a.shape[1]
  u = np.finfo(np.float64).eps / 2
  allowance = 2 * (d * u / (1 - d * u)) * scale * 1.01  # |w| = 1, two inner products.
  w = a.mean(0) - b.mean(0)
  w = w / max(np.linalg.norm(w), 1e-300)
  sa = list(np.argsort(a @ w)[:atoms])
  sb = list(np.argsort(-(b @ w))[:atoms])
  lower, upper = 0.0, np.inf
  alpha = beta = None
  passes = 0
  for passes in range(1, max_passes + 1):
    alpha, beta = _restricted(a[sa], b[sb], abs_tol, restricted, solver_kwargs)
    xa, xb = alpha @ a[sa], beta @ b[sb]
    r = xa - xb
    upper = min(upper, float(np.linalg.norm(r)))
    if upper <= abs_tol:
      break
    w = r / np.linalg.norm(r)
    pa, pb = a @ w, b @ w
    lower = max(lower, float(pa.min() - pb.max()) - allowance)
    if (upper - lower) <= rel_tol * upper:
      break
    new_a = [i for i in np.argsort(pa)[:atoms] if i not in set(sa)]
    new_b = [j for j in np.argsort(-pb)[:atoms] if j not in set(sb)]
    if not new_a and not new_b:
      break
    keep_a = [sa[i] for i in np.flatnonzero(alpha > 0)]
    keep_b = [sb[j] for j in np.flatnonzero(beta > 0)]
    sa = keep_a + [i for i in new_a if i not in keep_a]
    sb = keep_b + [j for j in new_b if j not in keep_b]
  lower = max(0.0, min(lower, upper))
  verdict = "disjoint" if lower > 0 else ("intersect" if upper <= abs_tol else "undetermined")
  sa, sb = np.asarray(sa), np.asarray(sb)
  return PairDistance(upper_bound=upper, lower_bound=lower, verdict=verdict,
                      alpha_support=sa[alpha > 0], alpha=alpha[alpha > 0],
                      beta_support=sb[beta > 0], beta=beta[beta > 0], passes=passes)


@dataclasses.dataclass(frozen=True)
class ClassHullDistances:
  """Distances between the hulls of every pair of c classes ((c, c), symmetric, 0 diagonal)."""
  upper_bound: np.ndarray
  lower_bound: np.ndarray
  verdict: np.ndarray         # (c, c) str: "disjoint", "intersect", "undetermined" ("-" diagonal).

  def as_dict(self) -> dict:
    c = len(self.upper_bound)
    off = ~np.eye(c, dtype=bool)
    v = self.verdict[off]
    return {"classes": c, "pairs": int(off.sum() // 2),
            "disjoint_pairs": int(np.sum(v == "disjoint") // 2),
            "intersecting_pairs": int(np.sum(v == "intersect") // 2),
            "undetermined_pairs": int(np.sum(v == "undetermined") // 2),
            "min_distance": float(self.upper_bound[off].min()) if c > 1 else None,
            "median_distance": float(np.median(self.upper_bound[off])) if c > 1 else None,
            "upper_bound": self.upper_bound.tolist(), "lower_bound": self.lower_bound.tolist()}


def class_hull_distances(points, labels, *, num_classes: Optional[int] = None,
                         **kwargs) -> ClassHullDistances:
  """`hull_pair_distance` between the hulls of every pair of classes.

  points: (n, d); labels: (n,) ints in [0, c); every class needs a point. **kwargs: passed on.
  """
  points = _points(points, "points")
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  if len(labels) != len(points):
    raise ValueError(f"{len(labels)} labels for {len(points)} points")
  c = int(num_classes or labels.max() + 1)
  for k in range(c):
    if not np.any(labels == k):
      raise ValueError(f"class {k} has no points; choose the classes before asking for their "
                       "hulls")
  ub, lb = np.zeros((c, c)), np.zeros((c, c))
  verdict = np.full((c, c), "-", dtype=object)
  for i in range(c):
    for j in range(i + 1, c):
      r = hull_pair_distance(points[labels == i], points[labels == j], **kwargs)
      ub[i, j] = ub[j, i] = r.upper_bound
      lb[i, j] = lb[j, i] = r.lower_bound
      verdict[i, j] = verdict[j, i] = r.verdict
  return ClassHullDistances(upper_bound=ub, lower_bound=lb, verdict=verdict.astype(str))
