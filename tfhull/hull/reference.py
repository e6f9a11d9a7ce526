"""Exact float64 reference solvers for projecting queries onto the convex hull of a point set.

Problem (P), for a query x of shape (d,) and points A of shape (n, d) (rows a_i):

  min_alpha 1/2 ||A^T alpha - x||^2  s.t.  alpha >= 0, 1^T alpha = 1.

The projection is p = A^T alpha, the distance ||x - p||. alpha is not unique for inside queries or
degenerate data, so compare projections and distances, not weights.

- `min_norm_point`: Wolfe's (1976) minimum-norm-point algorithm on the query-shifted points
  a_i - x. Finite termination; certifies optimality through the Frank-Wolfe gap.
- `CvxpyProjector` / `cvxpy_project`: the paper authors' cvxpy set-up (CLARABEL or ECOS).
- `in_hull_lp`: LP feasibility membership test (scipy HiGHS).

CPU only; imports numpy and scipy (cvxpy lazily, inside `CvxpyProjector`), never TensorFlow.
"""

import dataclasses
import importlib.util

import numpy as np
import scipy.linalg
import scipy.optimize

_CVXPY_SOLVERS = ("CLARABEL", "ECOS")


@dataclasses.dataclass(frozen=True)
class ReferenceResult:
  """Solution of (P) for one query.

  Attributes:
    weights: (n,) float64 convex weights alpha (>= 0, sum 1).
    projection: (d,) float64 projection p = A^T alpha, in the units of the points.
    distance: ||x - p||, in the units of the points.
    support: (k,) int64 indices i with weights[i] > 0, ascending.
    iterations: Wolfe major cycles, or the solver's iteration count for cvxpy.
    gap: Frank-Wolfe duality gap max_i <a_i, r> - <p, r> with r = x - p, in squared units;
      f(alpha) - f* <= gap, and (||r||^2 - gap) / ||r|| is a lower bound on the distance.
    converged: whether the solver's stopping test passed (Wolfe: the gap test; cvxpy: status
      "optimal").
  """
  weights: np.ndarray
  projection: np.ndarray
  distance: float
  support: np.ndarray
  iterations: int
  gap: float = float("nan")
  converged: bool = True


def _as_problem(points, query) -> tuple[np.ndarray, np.ndarray]:
  """Validates and converts to float64: points (n, d), query (d,)."""
  a = np.asarray(points, dtype=np.float64)
  x = np.asarray(query, dtype=np.float64)
  if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
    raise ValueError(f"points must have shape (n, d) with n, d >= 1, got {a.shape}")
  if x.shape != (a.shape[1],):
    raise ValueError(f"query must have shape ({a.shape[1]},) to match points, got {x.shape}")
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(x))):
    raise ValueError("points and query must be finite")
  return a, x


def _fw_gap(points: np.ndarray, projection: np.ndarray, residual: np.ndarray) -> float:
  """max_i <a_i, r> - <p, r> for points (n, d), projection p (d,), residual r = x - p (d,)."""
  return float(np.max((points - projection) @ residual))


def _affine_minimizer(gram: np.ndarray, lifted_points: np.ndarray) -> np.ndarray:
  """Weights y (k,), 1^T y = 1, minimising ||P^T y|| for the k rows P of `lifted_points`.

  Solves (G + c 1 1^T) u = 1, y = u / 1^T u, with G = P P^T (k, k) and c = max diag(G): on
  1^T y = 1 the added term is the constant c, and the matrix is positive definite iff the rows
  are affinely independent. Falls back to least squares on the lifted rows [sqrt(c), P_j] when
  the Cholesky factorisation fails or is ill-conditioned.
  """
  k = gram.shape[0]
  if k == 1:
    return np.ones(1)
  c = float(np.max(np.diag(gram)))
  if c <= 0.0:
    c = 1.0
  m = gram + c
  ones = np.ones(k)
  try:
    factor, lower = scipy.linalg.cho_factor(m, lower=True, check_finite=False)
    diag = np.abs(np.diag(factor))
    if diag.min() > 1e-7 * diag.max():
      u = scipy.linalg.cho_solve((factor, lower), ones, check_finite=False)
      s = u.sum()
      if np.isfinite(s) and s > 0:
        return u / s
  except np.linalg.LinAlgError:
    pass
  # min ||L y - sqrt(c) e_0||, L = [sqrt(c) 1^T; P^T]: normal equations (G + c 1 1^T) y = c 1.
  lifted = np.vstack([np.full((1, k), np.sqrt(c)), lifted_points.T])
  rhs = np.zeros(lifted.shape[0])
  rhs[0] = np.sqrt(c)
  u = np.linalg.lstsq(lifted, rhs, rcond=None)[0]
  return u / u.sum()


def _wolfe(centred: np.ndarray, sq_norms: np.ndarray, query: np.ndarray, tol: float,
           max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float, bool]:
  """Wolfe's MNP on centred points (n, d) with row norms^2 (n,), centred query (d,).

  Returns (support indices (k,), weights (k,), z = P_S^T w (d,), major cycles, gap, converged),
  where P_S are the support rows shifted by the query and z = p - x.
  """
  # Start at the nearest point (||a - x||^2 up to the constant ||x||^2).
  j0 = int(np.argmin(sq_norms - 2.0 * (centred @ query)))
  in_s = np.zeros(centred.shape[0], dtype=bool)
  s = [j0]
  in_s[j0] = True
  p_s = (centred[j0] - query)[None, :]
  gram = p_s @ p_s.T
  w = np.ones(1)
  z = p_s[0].copy()
  zz = float(z @ z)
  gap = np.inf
  converged = False
  it = 0
  while it < max_iter:
    it += 1
    # Major cycle: the point minimising <p_j, z> over all shifted points.
    v = centred @ z
    j = int(np.argmin(v))
    p_j = centred[j] - query
    v_j = float(p_j @ z)
    gap = zz - v_j
    scale = max(float(p_j @ p_j), float(np.max(np.diag(gram))))
    if gap <= tol * scale:
      converged = True
      break
    if in_s[j]:
      break  # Numerical stall: the best point is already in the corral.
    g_j = p_s @ p_j
    gram = np.block([[gram, g_j[:, None]], [g_j[None, :], np.array([[p_j @ p_j]])]])
    p_s = np.vstack([p_s, p_j])
    s.append(j)
    in_s[j] = True
    w = np.append(w, 0.0)
    # Minor cycles: move to the affine minimiser of the corral, dropping points on the way.
    while True:
      y = _affine_minimizer(gram, p_s)
      if np.all(y > 0.0):
        w = y
        break
      neg = y <= 0.0
      ratios = np.full(len(w), np.inf)
      ratios[neg] = w[neg] / (w[neg] - y[neg])
      i_min = int(np.argmin(ratios))
      theta = min(max(ratios[i_min], 0.0), 1.0)
      w = theta * y + (1.0 - theta) * w
      w[i_min] = 0.0
      keep = w > 0.0
      for i in np.flatnonzero(~keep):
        in_s[s[i]] = False
      s = [s[i] for i in np.flatnonzero(keep)]
      p_s = p_s[keep]
      gram = gram[np.ix_(keep, keep)]
      w = w[keep]
      w = w / w.sum()
    z_new = p_s.T @ w
    zz_new = float(z_new @ z_new)
    if zz_new >= zz:
      # No strict decrease (impossible in exact arithmetic): keep the point, stop.
      z, zz = z_new, zz_new
      v_j = float(np.min(centred @ z) - query @ z)
      gap = zz - v_j
      converged = gap <= tol * scale
      break
    z, zz = z_new, zz_new
  else:  # max_iter reached: report the gap of the returned point.
    gap = zz - float(np.min(centred @ z) - query @ z)
  return np.asarray(s, dtype=np.int64), w, z, it, max(float(gap), 0.0), converged


def _to_result(points: np.ndarray, support: np.ndarray, w: np.ndarray, z: np.ndarray,
               iterations: int, gap: float, converged: bool) -> ReferenceResult:
  order = np.argsort(support)
  support, w = support[order], w[order]
  weights = np.zeros(points.shape[0])
  weights[support] = w
  projection = w @ points[support]
  return ReferenceResult(weights=weights, projection=projection, distance=float(np.linalg.norm(z)),
                         support=support, iterations=int(iterations), gap=gap,
                         converged=bool(converged))


def min_norm_point(points, query, *, tol: float = 1e-12,
                   max_iter: int = 100_000) -> ReferenceResult:
  """Projects one query onto conv(points) with Wolfe's minimum-norm-point algorithm (float64).

  Runs on the shifted points a_i - x (data centred first, which leaves (P) unchanged and reduces
  rounding). Stops when Wolfe's test holds: ||z||^2 - min_j <z, a_j - x> <= tol * max ||a_j - x||^2
  over the corral and the candidate, z = p - x, i.e. the gap is below tol times the squared scale.
  Memory O(nd + k^2) for a support of size k; nothing n x n.

  Args:
    points: (n, d) array.
    query: (d,) array.
    tol: relative tolerance of the optimality test (Wolfe's Z1).
    max_iter: maximum number of major cycles.

  Returns:
    ReferenceResult; `distance` is ||z|| in the units of the points.
  """
  a, x = _as_problem(points, query)
  centre = a.mean(axis=0)
  centred = a - centre
  return _solve_centred(a, centred, np.einsum("ij,ij->i", centred, centred), x - centre, tol,
                        max_iter)


def _solve_centred(points, centred, sq_norms, query_c, tol, max_iter) -> ReferenceResult:
  support, w, z, it, gap, converged = _wolfe(centred, sq_norms, query_c, tol, max_iter)
  return _to_result(points, support, w, z, it, gap, converged)


def project_batch(points, queries, *, tol: float = 1e-12,
                  max_iter: int = 100_000) -> list[ReferenceResult]:
  """`min_norm_point` for each row of queries (m, d); a Python loop, centring done once."""
  a, _ = _as_problem(points, np.zeros(np.shape(points)[-1]))
  qs = np.asarray(queries, dtype=np.float64)
  if qs.ndim != 2 or qs.shape[1] != a.shape[1]:
    raise ValueError(f"queries must have shape (m, {a.shape[1]}), got {qs.shape}")
  if not np.all(np.isfinite(qs)):
    raise ValueError("queries must be finite")
  centre = a.mean(axis=0)
  centred = a - centre
  sq_norms = np.einsum("ij,ij->i", centred, centred)
  out = []
  for q in qs:
    out.append(_solve_centred(a, centred, sq_norms, q - centre, tol, max_iter))
  return out


class CvxpyProjector:
  """The paper authors' cvxpy formulation of (P), compiled once and re-solved per query.

  min sum_squares(A^T alpha - x) s.t. alpha >= 0, sum(alpha) = 1, with x a cvxpy Parameter, so
  repeated calls reuse the compiled problem. Interior-point weights are never exactly zero:
  `support` is then nearly all of range(n); use `min_norm_point` for support sizes.
  """

  def __init__(self, points, solver: str = "CLARABEL", tol: float = 1e-8):
    """Args: points (n, d); solver "CLARABEL" or "ECOS"; tol for all gap and feasibility tests."""
    try:
      import cvxpy as cp  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("CvxpyProjector needs cvxpy (and clarabel or ecos): "
                        "pip install 'cvxpy>=1.5' clarabel ecos, or install tfhull[test]") from e
    solver = solver.upper()
    if solver not in _CVXPY_SOLVERS:
      raise ValueError(f"solver must be one of {_CVXPY_SOLVERS}, got {solver!r}")
    if importlib.util.find_spec(solver.lower()) is None:
      raise ImportError(f"cvxpy solver {solver} is not installed: pip install {solver.lower()}")
    self.points, _ = _as_problem(points, np.zeros(np.shape(points)[-1]))
    self.solver = solver
    self.tol = float(tol)
    n, d = self.points.shape
    self._cp = cp
    self._alpha = cp.Variable(n)
    self._query = cp.Parameter(d)
    self._problem = cp.Problem(
        cp.Minimize(cp.sum_squares(self.points.T @ self._alpha - self._query)),
        [self._alpha >= 0, cp.sum(self._alpha) == 1])
    if solver == "CLARABEL":
      self._options = dict(tol_gap_abs=self.tol, tol_gap_rel=self.tol, tol_feas=self.tol)
    else:
      self._options = dict(abstol=self.tol, reltol=self.tol, feastol=self.tol)

  def __call__(self, query) -> ReferenceResult:
    """Solves (P) for one query (d,)."""
    a, x = _as_problem(self.points, query)
    self._query.value = x
    cp = self._cp
    try:
      self._problem.solve(solver=self.solver, **self._options)
    except cp.error.SolverError as e:
      raise RuntimeError(f"cvxpy/{self.solver} failed on (P): {e}") from e
    status = self._problem.status
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self._alpha.value is None:
      raise RuntimeError(f"cvxpy/{self.solver} returned status {status!r} on (P)")
    weights = np.clip(np.asarray(self._alpha.value, dtype=np.float64), 0.0, None)
    weights /= weights.sum()
    projection = weights @ a
    residual = x - projection
    stats = self._problem.solver_stats
    iterations = int(stats.num_iters) if stats is not None and stats.num_iters is not None else -1
    return ReferenceResult(weights=weights, projection=projection,
                           distance=float(np.linalg.norm(residual)),
                           support=np.flatnonzero(weights > 0.0), iterations=iterations,
                           gap=_fw_gap(a, projection, residual),
                           converged=status == cp.OPTIMAL)


def cvxpy_project(points, query, *, solver: str = "CLARABEL",
                  tol: float = 1e-8) -> ReferenceResult:
  """Solves (P) for one query (d,) with cvxpy; builds a `CvxpyProjector` (use it for many queries)."""
  return CvxpyProjector(points, solver=solver, tol=tol)(query)


def in_hull_lp(points, query, *, tol: float = 1e-9) -> bool:
  """Whether query (d,) lies in conv(points (n, d)), by LP feasibility (scipy HiGHS).

  Finds lambda >= 0 with A^T lambda = x and 1^T lambda = 1 (zero objective). The data are centred
  and scaled to max |entry| 1 first (membership is affine invariant), so `tol` is HiGHS's primal
  feasibility tolerance relative to the data's extent.

  Raises:
    RuntimeError: when HiGHS neither finds a feasible point nor proves infeasibility.
  """
  a, x = _as_problem(points, query)
  centre = a.mean(axis=0)
  a = a - centre
  x = x - centre
  scale = float(np.max(np.abs(a)))
  if scale > 0:
    a, x = a / scale, x / scale
  n = a.shape[0]
  a_eq = np.vstack([a.T, np.ones((1, n))])
  b_eq = np.append(x, 1.0)
  res = scipy.optimize.linprog(
      np.zeros(n), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs",
      options={"primal_feasibility_tolerance": max(tol, 1e-10),
               "dual_feasibility_tolerance": max(tol, 1e-10)})
  if res.status == 0:
    return True
  if res.status == 2:
    return False
  raise RuntimeError(f"linprog/HiGHS could not decide hull membership: {res.message}")


__all__ = [
    "ReferenceResult", "min_norm_point", "project_batch", "CvxpyProjector", "cvxpy_project",
    "in_hull_lp",
]
