"""Closest flip points: the nearest point of the decision boundary, not a point on one segment.

  lin = linear_flip_points(features, w, b)           # feature space of a linear head: exact
  lin.distance[:, j], lin.lower_bound[:, j]          # to the tie of the predicted class with j
  inp = input_flip_points(model, x, starts=[x_cw])   # input space, box [0, 1]: iterative search

Linear head (logits z = W^T f + b, predicted class p): the points where p ties with j and both
beat every other class form the polyhedron {a_j^T y + beta_j = 0, a_k^T y + beta_k >= 0 (k != p,
j)} with a_k = w_p - w_k, beta_k = b_p - b_k (optionally y >= 0 for post-ReLU features). Its
closest point to f solves a small QP. When only the tie binds, y = f - (a_j^T f + beta_j) a_j /
|a_j|^2 (closed form); otherwise the dual (c - 1 variables, concave) is maximized with L-BFGS-B,
then the active set is solved exactly. Certificate: any dual point (lambda >= 0, mu) gives the
lower bound sqrt(2 D(lambda, mu)) (weak duality); the primal point gives the upper bound when its
constraints hold to `feasibility_tol`. The closest boundary point of p's region overall is the
minimum over j.

Input space (a model with logits, inputs in [0, 1]): from each start, repeat: linearize g_k =
z_p - z_k at the current point, take the point of the box closest to x on the linearized tie
(u = clip(x - mu a, 0, 1), mu by bisection), keep the class k with the closest such point. An
iterate is a boundary point when p is among the top two logits there and they tie within `tol`;
the nearest iterate (per start) where the label already changed is pulled back to the first tie
on the segment from x by bisection (`tfhull.attacks.minimal.flip_points`). The best over iterates and starts is an
upper bound on the closest flip point; for a linear model the first step from x is exact.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

from tfhull import models


@dataclasses.dataclass(frozen=True)
class LinearFlipPoints:
  """Closest tie points of q features with each class, in a linear head's feature space."""
  predicted: np.ndarray    # (q,) predicted class p.
  distance: np.ndarray     # (q, c) upper bound |y - f| to the p/j tie region (inf: empty or
                           # unreached; 0 at j = p).
  lower_bound: np.ndarray  # (q, c) certified lower bound (weak duality).
  closed_form: np.ndarray  # (q, c) bool: only the tie constraint binds (exact, closed form).
  nearest: np.ndarray      # (q,) class j of the closest boundary.
  point: np.ndarray        # (q, k) the closest boundary point (with class `nearest`).

  @property
  def closest(self) -> np.ndarray:
    """(q,) distance to the boundary of the predicted class's region."""
    return self.distance[np.arange(len(self.predicted)), self.nearest]


def _dual(f, rows, offsets, n_eq, nonneg):
  """D(z) and its gradient for min 1/2|y - f|^2 s.t. rows[:n_eq] y + off = 0, rows[n_eq:] y + off
  >= 0 (and y >= 0 when nonneg): y(z) = f + rows^T z (clipped at 0), z[n_eq:] >= 0."""
  def value(z):
    y = f + rows.T @ z
    if nonneg:
      y = np.maximum(y, 0.0)
    r = rows @ y + offsets
    val = 0.5 * np.sum((y - f) ** 2) - z @ r
    return val, y, r
  return value


def _tie_point(f, w, b, p, j, nonneg, feasibility_tol, maxiter=500):
  """(upper, lower, closed_form, y) for the p/j tie polyhedron's closest point to f."""
  from scipy import optimize  # pylint: disable=import-outside-toplevel
  c = w.shape[1]
  others = [k for k in range(c) if k not in (p, j)]
  a = w[:, p] - w[:, j]
  beta = b[p] - b[j]
  na = a @ a
  scale = max(1.0, float(np.abs(f @ w).max() + np.abs(b).max()))
  tol = feasibility_tol * scale
  if na <= 0:
    return np.inf, np.inf, False, f.copy()
  g = a @ f + beta
  y = f - g / na * a
  ineq = np.stack([w[:, p] - w[:, k] for k in others]) if others else np.zeros((0, len(f)))
  ineq_off = np.array([b[p] - b[k] for k in others])
  if (not others or np.min(ineq @ y + ineq_off) >= -tol) and (not nonneg or y.min() >= 0):
    d = abs(g) / np.sqrt(na)
    return d, d, True, y
  rows = np.vstack([a[None], ineq])
  offsets = np.r_[beta, ineq_off]
  value = _dual(f, rows, offsets, 1, nonneg)

  def neg(z):  # Minimize -D: D(z) = min_y L = val; dD/dz = -(rows y + off).
    val, _, r = value(z)
    return -val, r

  bounds = [(None, None)] + [(0.0, None)] * len(others)
  z0 = np.zeros(len(offsets))
  z0[0] = g / na
  res = optimize.minimize(neg, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12})
  z = res.x
  lower2, y, _ = value(z)
  if not nonneg:  # Polish: the active set's equality-constrained solution, exact when KKT hold.
    act = np.r_[True, z[1:] > 1e-12 * max(1.0, np.abs(z).max())]
    m = rows[act]
    try:
      zz = np.linalg.solve(m @ m.T, -(m @ f + offsets[act]))
    except np.linalg.LinAlgError:
      zz = None
    if zz is not None and np.all(zz[1:] >= 0):
      z2 = np.zeros_like(z)
      z2[act] = zz
      l2, y2, _ = value(z2)
      y, lower2 = y2, max(lower2, l2)
  r = rows @ y + offsets
  feasible = abs(r[0]) <= tol and (len(r) == 1 or r[1:].min() >= -tol) and \
      (not nonneg or y.min() >= 0)
  upper = float(np.linalg.norm(y - f)) if feasible else np.inf
  lower = float(np.sqrt(2.0 * max(lower2, 0.0)))  # D bounds 1/2 |y - f|^2.
  if not np.isfinite(lower2) or lower2 > 1e300:  # Dual unbounded: the tie region is empty.
    lower = np.inf
  return upper, min(lower, upper), False, y


def linear_flip_points(features: np.ndarray, w: np.ndarray, b: np.ndarray, *,
                       nonneg: bool = False, feasibility_tol: float = 1e-9) -> LinearFlipPoints:
  """Closest point where the predicted class ties with each other class (linear head).

  Args:
    features: (q, k) features f; w: (k, c), b: (c,) the head (logits f @ w + b).
    nonneg: also require y >= 0 (post-ReLU features).
    feasibility_tol: constraint violation accepted for the upper bound, relative to the logit
      scale max(1, max |z|).
  """
  f = np.asarray(features, np.float64)
  w = np.asarray(w, np.float64)
  b = np.asarray(b, np.float64)
  q, c = len(f), w.shape[1]
  pred = (f @ w + b).argmax(1)
  dist = np.full((q, c), np.inf)
  low = np.full((q, c), np.inf)
  closed = np.zeros((q, c), bool)
  points = np.zeros_like(f)
  nearest = np.zeros(q, np.int64)
  for i in range(q):
    best = np.inf
    for j in range(c):
      if j == pred[i]:
        dist[i, j] = low[i, j] = 0.0
        continue
      up, lo, cf, y = _tie_point(f[i], w, b, pred[i], j, nonneg, feasibility_tol)
      dist[i, j], low[i, j], closed[i, j] = up, lo, cf
      if up < best:
        best, nearest[i], points[i] = up, j, y
  return LinearFlipPoints(predicted=pred, distance=dist, lower_bound=low, closed_form=closed,
                          nearest=nearest, point=points)


@dataclasses.dataclass(frozen=True)
class InputFlipPoints:
  """Best boundary points found for n inputs (input space, box [0, 1])."""
  point: np.ndarray      # (n, ...) float32 boundary point (x where none found).
  distance: np.ndarray   # (n,) L2 distance from x (nan: none found).
  gap: np.ndarray        # (n,) top-two logit gap at the point.
  classes: np.ndarray    # (n, 2) (predicted class at x, class tied with it).
  found: np.ndarray      # (n,) bool.
  start: np.ndarray      # (n,) index of the start that gave the best point (0: x itself).
  iterations: int        # linearization steps run per start.


def _jacobian(model, x):
  """(logits (n, c), jacobian (n, c, d)) in float64."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  xt = tf.convert_to_tensor(x, tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(xt)
    z = model(xt, training=False)
  jac = tape.batch_jacobian(z, xt)
  n, c = z.shape
  return z.numpy().astype(np.float64), jac.numpy().reshape(n, c, -1).astype(np.float64)


def _box_tie(x, a, target, iters=80):
  """(n, m, d) points u = clip(x - mu a, 0, 1) with a . u = target (bisection on mu; a . u is
  non-increasing in mu); nan rows where target is outside the reachable range."""
  lo_dot = np.sum(a * np.where(a > 0, 0.0, 1.0), -1)   # min over the box of a . u
  hi_dot = np.sum(a * np.where(a > 0, 1.0, 0.0), -1)   # max
  reach = (target >= lo_dot) & (target <= hi_dot)
  big = 1.0 / np.maximum(np.min(np.where(np.abs(a) > 0, np.abs(a), np.inf), -1), 1e-300)
  lo, hi = -big, big
  xb = x[:, None, :]
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    val = np.sum(a * np.clip(xb - mid[..., None] * a, 0, 1), -1)
    above = val > target
    lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
  u = np.clip(xb - (0.5 * (lo + hi))[..., None] * a, 0, 1)
  return np.where(reach[..., None], u, np.nan)


def input_flip_points(model, x: np.ndarray, *, starts: Sequence[np.ndarray] = (),
                      max_iter: int = 20, tol: float = 1e-3, overshoot: float = 0.05,
                      batch_size: int = 256, strategy=None) -> InputFlipPoints:
  """Iterative minimum-norm boundary search in [0, 1]^d from x and from each start.

  Args:
    model: Keras model on inputs shaped like x (logits out).
    x: (n, ...) inputs in [0, 1].
    starts: arrays shaped like x where the linearization starts besides x itself (e.g. the CW-L2
      adversarial examples, segment-bisection flip points); rows equal to x are fine.
    max_iter: linearization steps per start.
    tol: top-two logit gap that counts as a tie.
    overshoot: each iterate u also gives x + (1 + overshoot) (u - x) (in the box): where the
      label has changed there, bisection back along the segment from x finds a tie.
  """
  from tfhull.attacks import minimal  # pylint: disable=import-outside-toplevel
  x = np.asarray(x, np.float32)
  n, shape = len(x), x.shape
  x64 = x.reshape(n, -1).astype(np.float64)
  z0 = models.predict(model, x, batch_size=batch_size, strategy=strategy)
  pred = z0.argmax(1)
  rows = np.arange(n)
  best = np.full(n, np.inf)
  best_pt = x64.copy()
  best_start = np.full(n, -1)
  for s, start in enumerate([x] + [np.asarray(v, np.float32) for v in starts]):
    y = start.reshape(n, -1).astype(np.float64)
    changed_d = np.full(n, np.inf)     # The nearest iterate past the boundary, pulled back
    changed_pt = x64.copy()            # by bisection once per start.

    def consider(y):
      """Records y as a tie candidate, and y overshot by `overshoot` (within the box) as a
      point past the boundary."""
      nonlocal best, changed_d
      tie, _ = _status(model, y.reshape(shape).astype(np.float32), pred, tol, batch_size,
                       strategy)
      dist = np.linalg.norm(y - x64, axis=1)
      better = tie & (dist < best)
      best = np.where(better, dist, best)
      best_pt[better] = y[better]
      best_start[better] = s
      over = np.clip(x64 + (1 + overshoot) * (y - x64), 0, 1)
      _, changed = _status(model, over.reshape(shape).astype(np.float32), pred, tol,
                           batch_size, strategy)
      d_over = np.linalg.norm(over - x64, axis=1)
      nearer = changed & (d_over < changed_d)
      changed_d = np.where(nearer, d_over, changed_d)
      changed_pt[nearer] = over[nearer]

    if s:
      consider(y)  # The start itself (a bisection flip point is already a tie).
    for _ in range(max_iter):
      z, jac = [], []
      for i in range(0, n, batch_size):
        zi, ji = _jacobian(model, y[i:i + batch_size].reshape((-1,) + shape[1:]))
        z.append(zi)
        jac.append(ji)
      z, jac = np.concatenate(z), np.concatenate(jac)
      a = jac[rows, pred][:, None, :] - jac                # (n, c, d) grad of z_p - z_k.
      g = z[rows, pred][:, None] - z                       # (n, c)
      target = np.sum(a * y[:, None, :], -1) - g           # a . u = a . y - g on the tie.
      u = _box_tie(x64, a, target)
      d = np.linalg.norm(u - x64[:, None, :], axis=-1)
      d[rows, pred] = np.inf
      d = np.where(np.isnan(d), np.inf, d)
      k = d.argmin(1)
      ok = np.isfinite(d[rows, k])
      y = np.where(ok[:, None], u[rows, k], y)
      consider(y)
    pull = np.isfinite(changed_d)
    if pull.any():
      fp = minimal.flip_points(model, x[pull], changed_pt[pull].reshape(
          (-1,) + shape[1:]).astype(np.float32), tol=tol, batch_size=batch_size,
                               strategy=strategy)
      idx = np.flatnonzero(pull)
      good = fp.found & (fp.gap < tol) & (fp.distance < best[idx])
      best[idx[good]] = fp.distance[good]
      best_pt[idx[good]] = fp.point[good].reshape(int(good.sum()), x64.shape[1])
      best_start[idx[good]] = s
  found = np.isfinite(best)
  pts = best_pt.reshape(shape).astype(np.float32)
  zf = models.predict(model, pts, batch_size=batch_size, strategy=strategy)
  other = zf.copy()
  other[rows, pred] = -np.inf
  j = other.argmax(1)
  gap = np.abs(zf[rows, pred] - zf[rows, j])
  return InputFlipPoints(
      point=pts, distance=np.where(found, np.linalg.norm((pts - x).reshape(n, -1), axis=1),
                                   np.nan),
      gap=np.where(found, gap, np.nan), classes=np.stack([pred, np.where(found, j, -1)], 1),
      found=found, start=best_start, iterations=max_iter)


def _status(model, y, pred, tol, batch_size, strategy):
  """(tie, changed) (n,) bool at points y: p among the top two logits and within tol of the
  other one; the predicted label is no longer p."""
  n = len(y)
  rows = np.arange(n)
  z = models.predict(model, y, batch_size=batch_size, strategy=strategy)
  other = z.copy()
  other[rows, pred] = -np.inf
  tie = (np.abs(z[rows, pred] - other.max(1)) < tol) & (z[rows, pred] >= np.sort(z, 1)[:, -2])
  return tie, z.argmax(1) != pred
