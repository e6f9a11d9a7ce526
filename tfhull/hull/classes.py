"""Hull questions built on `project_onto_hull`: per-class hull distances and membership verdicts."""

import dataclasses
from typing import Optional

import numpy as np

from tfhull.hull import solver
from tfhull.hull.solver import _as_array
from tfhull.hull.solver import HullResult
from tfhull.hull.solver import project_onto_hull


@dataclasses.dataclass(frozen=True)
class PerClassResult:
  """Distances of q labelled queries to the hulls of each of c classes' points."""
  upper_bound: np.ndarray            # (q, c) distance to each class hull (upper bound).
  lower_bound: np.ndarray            # (q, c) certified lower bound.
  own_distance: np.ndarray           # (q,) to the hull of the query's own class.
  own_lower_bound: np.ndarray        # (q,)
  nearest_other_class: np.ndarray    # (q,) the other class whose hull is closest.
  nearest_other_distance: np.ndarray  # (q,)
  nearest_other_lower_bound: np.ndarray  # (q,) min over other classes of their lower bounds.
  verdict: Optional[np.ndarray] = None   # (q, c) int8 verdict codes per class hull
                                         # (tfhull.hull.solver.OUTSIDE/INSIDE/UNDETERMINED).
  converged: Optional[np.ndarray] = None  # (q, c) bool.
  passes: Optional[np.ndarray] = None     # (q, c) full passes over each class's points (work).

  @property
  def closer_to_own(self) -> np.ndarray:
    """(q,) bool: certified closer to the own-class hull than to every other class hull."""
    return self.own_distance < self.nearest_other_lower_bound


def per_class_distances(points, labels, queries, query_labels, *,
                        num_classes: Optional[int] = None, **solver_kwargs) -> PerClassResult:
  """Distance of each query to every class hull, its own class's and the nearest other one.

  Args:
    points: (n, d) training points; labels: (n,) int class ids in [0, c).
    queries: (q, d); query_labels: (q,) int, the queries' (true or predicted) classes.
    num_classes: c (default: max label + 1). Every class needs at least one point.
    **solver_kwargs: passed to `project_onto_hull`.
  """
  points = _as_array(points, "points")
  queries = _as_array(queries, "queries")
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  query_labels = np.asarray(query_labels).astype(np.int64).reshape(-1)
  if labels.shape[0] != points.shape[0] or query_labels.shape[0] != queries.shape[0]:
    raise ValueError(f"labels ({labels.shape[0]}, {query_labels.shape[0]}) must match the rows "
                     f"of points ({points.shape[0]}) and queries ({queries.shape[0]})")
  c = int(num_classes or max(labels.max(initial=-1), query_labels.max(initial=-1)) + 1)
  if c < 2:
    raise ValueError("per-class distances need at least 2 classes")
  if labels.min(initial=0) < 0 or labels.max(initial=0) >= c or query_labels.min(initial=0) < 0 \
      or query_labels.max(initial=0) >= c:
    raise ValueError(f"labels must lie in [0, {c})")
  ub = np.zeros((queries.shape[0], c))
  lb = np.zeros((queries.shape[0], c))
  verdict = np.zeros((queries.shape[0], c), np.int8)
  converged = np.zeros((queries.shape[0], c), bool)
  passes = np.zeros((queries.shape[0], c), np.int64)
  for k in range(c):
    if not np.any(labels == k):
      raise ValueError(f"class {k} has no points; drop it (or choose classes) before asking for "
                       "per-class hulls")
  q = queries.shape[0]
  if _one_solve(points, solver_kwargs):
    # All (query, class) pairs in one solve: one pricing GEMM per pass scores every class's
    # points for its own queries (`pricing.ClassPricer`).
    rows = solver.ClassRows(labels=labels, num_classes=c, row_query=np.repeat(np.arange(q), c),
                            row_class=np.tile(np.arange(c), q))
    res = solver.project_onto_class_hulls(points, queries, rows, **solver_kwargs)
    ub, lb = res["upper_bound"].reshape(q, c), res["lower_bound"].reshape(q, c)
    verdict = res["verdict"].reshape(q, c).astype(np.int8)
    converged, passes = res["converged"].reshape(q, c), res["passes"].reshape(q, c)
  else:  # Projected gradient: one solve per class.
    ub, lb = np.zeros((q, c)), np.zeros((q, c))
    verdict = np.zeros((q, c), np.int8)
    converged, passes = np.zeros((q, c), bool), np.zeros((q, c), np.int64)
    for k in range(c):
      res = project_onto_hull(points[labels == k], queries, progress_label=f"class {k + 1}/{c}: ",
                              **solver_kwargs)
      ub[:, k], lb[:, k] = res.upper_bound, res.lower_bound
      verdict[:, k], converged[:, k], passes[:, k] = res.verdict, res.converged, res.passes
  rows = np.arange(queries.shape[0])
  other_ub, other_lb = ub.copy(), lb.copy()
  other_ub[rows, query_labels] = np.inf
  other_lb[rows, query_labels] = np.inf
  other = np.argmin(other_ub, axis=1)
  return PerClassResult(
      upper_bound=ub, lower_bound=lb, own_distance=ub[rows, query_labels],
      own_lower_bound=lb[rows, query_labels], nearest_other_class=other,
      nearest_other_distance=ub[rows, other],
      nearest_other_lower_bound=other_lb.min(axis=1),  # Below every other class hull.
      verdict=verdict, converged=converged, passes=passes)


def _one_solve(points: np.ndarray, solver_kwargs: dict) -> bool:
  """Whether the per-class hulls run as one column-generation solve (else: projected gradient,
  one solve per class)."""
  method = solver_kwargs.get("method", "column_generation")
  if method == "column_generation":
    return True
  from tfhull.hull import projected_gradient  # pylint: disable=g-import-not-at-top
  return projected_gradient.resolve_method(method, points, dict(solver_kwargs)) \
      == "column_generation"


@dataclasses.dataclass(frozen=True)
class Membership:
  """Hull-membership verdicts with their witnesses."""
  verdict: np.ndarray  # (q,) str: 'inside' (weights witness it), 'outside' (hyperplane
                       # separates it), 'undetermined' (neither certified within max_passes).
  result: HullResult   # support/weights (witness inside), hyperplane_* (witness outside).

  @property
  def inside(self) -> np.ndarray:
    return self.verdict == "inside"

  @property
  def outside(self) -> np.ndarray:
    return self.verdict == "outside"


def hull_membership(points, queries, *, abs_tol: Optional[float] = None,
                    **solver_kwargs) -> Membership:
  """Is each query in the convex hull of `points` (to within abs_tol)?

  'inside' means the returned convex weights reproduce the query to within abs_tol (exact
  membership cannot be certified in floating point); 'outside' means a separating hyperplane
  <w, a_i> <= b < <w, x> was certified (lower bound > 0).
  """
  res = project_onto_hull(points, queries, abs_tol=abs_tol, **solver_kwargs)
  return Membership(verdict=res.verdict_names, result=res)
