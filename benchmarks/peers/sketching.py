r"""The author's solver for the distance to a convex hull (Yousefzadeh, arXiv 2102.10502).

Reimplemented from the paper's description and the author's public MATLAB/Python code
(roozbeh-yz/sketching_hull; summarised in shared/notes/paper.md section 2.2), in numpy/scipy:

  (P)  min_alpha 1/2 ||D^T alpha - q||^2  s.t.  0 <= alpha <= 1, 1^T alpha = 1,

D (n, d) the training rows, q (d,) the query, as given (no centring: the author's code has none).

- **Sketching over row blocks**: the rows, in dataset order, are split into `pieces` blocks;
  stage k solves (P) on the first k n / pieces rows, warm-started from the previous stage's alpha
  padded with zeros (the first stage starts from alpha = 0, as the Python notebook does).
- **Gradient projection with subspace minimization** (`bqp_pg`) per stage: (1) the Cauchy point,
  the first local minimiser of the objective along the projected-gradient path
  x(t) = clip(alpha - t g, 0, 1), g = D (D^T alpha - q), found segment by segment between the
  breakpoints t_i (alpha_i / g_i for g_i > 0, (alpha_i - 1) / g_i for g_i < 0); (2) entries below
  `tolx` set to zero; (3) subspace minimization: (P) solved exactly on the nonzero entries, with
  the sum constraint; (4) stop when ||alpha - alpha_prev|| < tol or after the iteration cap.

Assumptions, where the description leaves a choice or the code differs from it:
- Exact subspace solve: the author calls MATLAB's lsqlin (interior point) or cvxpy+ECOS; here it
  is Wolfe's exact float64 minimum-norm point (`tfhull.hull.reference.min_norm_point`), which
  returns the same minimiser to far tighter tolerance.
- Cauchy step: the exact piecewise search as described (step = the offset from the segment's
  start). The author's code steps by the absolute path parameter t instead of t - t1 (and by t1
  when the slope is already positive), which changes only which entries survive step (2).
- Iterations: `maxit` = 1 per sketching stage as in both of the author's scripts (`while iter <=
  maxit`: at most two iterations); the last stage runs up to `final_maxit` = 100 iterations (the
  notebook's full-data setting) so that the result is converged, not a truncated first pass.
- tol = 1e-8, tolx = 1e-6, pieces = 5: the MATLAB MNIST script's settings (the notebook's
  tolx = 5e-4 stalls on nonnegative image data: entering entries are dropped as too small, and
  the returned distances were 14-38 % too large on 784-d structured images at n = 1,000).
- `centre=True` (our change, off by default) shifts points and query by the points' mean first.

The method chooses entries to enter the support only where g_i < 0 (the box, not the simplex,
drives the Cauchy step), so, unlike Frank-Wolfe-type methods, it is not invariant to translating
the data; `SketchResult.gap` (the Frank-Wolfe duality gap over all n rows) reports how far the
returned point is from optimal.
"""

import dataclasses
import time

import numpy as np

from tfhull.hull import reference


@dataclasses.dataclass(frozen=True)
class SketchConfig:
  pieces: int = 5           # Row blocks (eta).
  maxit: int = 1            # bqp_pg iteration cap per stage (author: 1).
  final_maxit: int = 100    # ... in the last stage (all rows).
  tol: float = 1e-8         # ||alpha - alpha_prev|| stopping tolerance.
  tolx: float = 1e-6        # Entries below this are dropped after the Cauchy step.
  upper: float = 1.0        # Box upper bound (the author's alpha <= 1).
  centre: bool = False      # Our change: shift points and query by the points' mean first.


@dataclasses.dataclass(frozen=True)
class SketchResult:
  """One query. weights (n,) float64 on the simplex; distance ||D^T alpha - q||; gap: the
  Frank-Wolfe gap max_i <a_i, r> - <p, r> (squared units, >= f(alpha) - f*); iterations:
  bqp_pg iterations over all stages; support_sizes: the subspace problem's size per iteration;
  seconds: wall time."""
  weights: np.ndarray
  distance: float
  gap: float
  iterations: int
  support_sizes: tuple[int, ...]
  seconds: float


def cauchy_point(d_rows: np.ndarray, query: np.ndarray, alpha: np.ndarray,
                 upper: float = 1.0) -> np.ndarray:
  """First local minimiser of 1/2 ||D^T x - q||^2 along x(t) = clip(alpha - t g, 0, upper).

  d_rows (n, d), query (d,), alpha (n,) in the box; returns x (n,). Cost: two products with D
  plus O(d) per group of entries frozen at a breakpoint (the slope is updated incrementally).
  """
  resid = d_rows.T @ alpha - query                     # D^T x - q at the segment start (d,).
  g = d_rows @ resid
  t_bar = np.full(g.shape, np.inf)
  neg, pos = g < 0, g > 0
  t_bar[neg] = (alpha[neg] - upper) / g[neg]
  t_bar[pos] = alpha[pos] / g[pos]
  p = np.where(t_bar > 0, -g, 0.0)                     # Entries at a bound stay there.
  dp = d_rows.T @ p                                    # D^T p (d,).
  x = alpha.copy()
  order = np.argsort(t_bar, kind="stable")
  order = order[t_bar[order] > 0]
  t_sorted = t_bar[order]
  t1, j = 0.0, 0
  while True:
    t2 = t_sorted[j] if j < len(order) else np.inf
    f1, f2 = float(dp @ resid), float(dp @ dp)
    if f1 >= 0 or f2 <= 0:
      break                                            # Uphill (or flat) from here: stop.
    step = -f1 / f2
    if step < t2 - t1:
      x += step * p
      break
    if not np.isfinite(t2):
      break
    x += (t2 - t1) * p
    resid += (t2 - t1) * dp
    k = j
    while k < len(order) and t_sorted[k] <= t2:        # Freeze every entry reaching a bound.
      i = order[k]
      dp -= p[i] * d_rows[i]
      p[i] = 0.0
      k += 1
    j, t1 = k, t2
  return np.clip(x, 0.0, upper)


def bqp_pg(d_rows: np.ndarray, query: np.ndarray, alpha0: np.ndarray, maxit: int,
           cfg: SketchConfig) -> tuple[np.ndarray, int, list[int]]:
  """Gradient projection + subspace minimization on rows d_rows (n, d) from alpha0 (n,).

  Returns (alpha (n,), iterations, subspace sizes).
  """
  x = np.clip(alpha0, 0.0, cfg.upper)
  sizes = []
  it = 0
  while it <= maxit:                                   # As the author's `while iter <= maxit`.
    x_prev = x
    xc = cauchy_point(d_rows, query, x, cfg.upper)
    xc[xc < cfg.tolx] = 0.0
    support = np.flatnonzero(xc)
    if support.size == 0:                              # Nothing entered: keep the best vertex.
      support = np.array([int(np.argmin(np.sum((d_rows - query) ** 2, axis=1)))])
    sub = reference.min_norm_point(d_rows[support], query)
    x = np.zeros_like(x)
    x[support] = sub.weights
    x[x < cfg.tolx] = 0.0
    x = np.clip(x, 0.0, cfg.upper) / x.sum()           # Back on the simplex after dropping.
    sizes.append(int(support.size))
    it += 1
    if np.linalg.norm(x - x_prev) < cfg.tol and it > 1:
      break
  return x, it, sizes


def sketch_project(points, query, cfg: SketchConfig = SketchConfig()) -> SketchResult:
  """Projects one query (d,) onto conv(points (n, d)) with the sketching method (float64)."""
  t0 = time.perf_counter()
  d_all = np.asarray(points, dtype=np.float64)
  q = np.asarray(query, dtype=np.float64)
  if cfg.centre:
    mu = d_all.mean(axis=0)
    d_all, q = d_all - mu, q - mu
  n = d_all.shape[0]
  alpha = np.zeros(0)
  iters, sizes = 0, []
  for stage in range(1, cfg.pieces + 1):
    m = n if stage == cfg.pieces else max(1, (n * stage) // cfg.pieces)
    alpha = np.pad(alpha, (0, m - alpha.size))
    alpha, it, sz = bqp_pg(d_all[:m], q, alpha,
                           cfg.final_maxit if stage == cfg.pieces else cfg.maxit, cfg)
    iters += it
    sizes += sz
  p = alpha @ d_all
  r = q - p
  gap = float(np.max(d_all @ r) - p @ r)
  return SketchResult(weights=alpha, distance=float(np.linalg.norm(r)), gap=max(gap, 0.0),
                      iterations=iters, support_sizes=tuple(sizes),
                      seconds=time.perf_counter() - t0)
