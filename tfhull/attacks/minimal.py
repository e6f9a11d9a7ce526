"""Smallest label-flipping perturbations (bisection over eps) and closest flip points.

  m = minimal_eps(model, x, y, norm="2", eps_max=3.0)          # per-example smallest PGD eps
  f = flip_points(model, x, m.x_adv)                            # boundary points on the segments

`minimal_eps` bisects eps per example with (deterministic, no random start) PGD: an example's
bracket [lower, eps] always has PGD failing at `lower` and succeeding at `eps`, and shrinks to
eps_max / 2**steps. `flip_points` bisects along the segment from a clean sample to its
adversarial example until the model's top-two logits tie within `tol`: a point on the decision
boundary, at distance `distance` from the clean sample (Yousefzadeh & O'Leary's flip points).
"""

import dataclasses
from typing import Optional

import numpy as np

from tfhull import models
from tfhull.attacks import gradient


@dataclasses.dataclass
class MinimalResult:
  """Per example: the smallest eps found to flip the label, and its adversarial example."""
  eps: np.ndarray      # (n,) float32; inf where PGD at the largest eps tried does not flip; 0 if
                       # already wrong.
  lower: np.ndarray    # (n,) float32 largest eps tried that did not flip (eps - lower <= tol).
  x_adv: np.ndarray    # (n, ...) float32 adversarial example at `eps` (x where not found).
  found: np.ndarray    # (n,) bool.
  tol: float           # eps_max / 2**steps: every bracket eps - lower is at most this.
  eps_tried: float = float("nan")  # The largest eps tried (eps_max, or the grown limit).


@dataclasses.dataclass
class FlipPoints:
  """Per example: where the segment x -> x_adv crosses the decision boundary."""
  point: np.ndarray     # (n, ...) float32 boundary point (x where not found).
  t: np.ndarray         # (n,) position on the segment, 0 = clean sample, 1 = adversarial.
  classes: np.ndarray   # (n, 2) int32 (clean-side class, adversarial-side class); -1 if none.
  gap: np.ndarray       # (n,) top-two logit gap at the point (nan where not found).
  distance: np.ndarray  # (n,) L2 distance from the clean sample (nan where not found).
  found: np.ndarray     # (n,) bool: the label differs at the two ends of the segment.


def _labels(model, x, batch_size, strategy):
  return models.predict(model, x, batch_size=batch_size, strategy=strategy).argmax(1)


def eps_cap(norm: str, input_dim: int) -> float:
  """The largest useful radius for inputs in [0, 1]: 1 for L-inf, the diameter sqrt(d) for L2."""
  return 1.0 if norm == "inf" else float(np.sqrt(input_dim))


def minimal_eps(model, x: np.ndarray, y: np.ndarray, *, norm: str, eps_max: float,
                steps: int = 10, cfg: gradient.IterativeConfig = gradient.IterativeConfig(),
                batch_size: int = 128, strategy=None, progress: bool = False,
                cap: Optional[float] = None) -> MinimalResult:
  """Bisection over eps with PGD (no random start), per example, for the smallest flipping eps.

  Args:
    model: Keras model (logits). x: (n, ...) in [0, 1]; y: (n,) true labels.
    norm: 'inf' or '2'; eps_max: the first upper limit tried; steps: bisection steps.
    cfg: PGD settings (steps, step_size as a fraction of eps); its rand_init is ignored.
    cap: if above eps_max, the samples PGD does not flip at eps_max are tried again at 2 eps_max,
      4 eps_max, ... (the last try at `cap`) until they flip or `cap` is reached; a sample found
      at 2^k eps_max gets k - 1 extra bisection steps, so every bracket ends <= eps_max / 2^steps.
      Only those samples are re-attacked: when all flip at eps_max the result is the one without
      a cap, bit for bit. None: no growth (`eps_cap(norm, d)` is the natural cap).
  """
  model_fn = lambda v: model(v, training=False)  # pylint: disable=unnecessary-lambda-assignment
  step = gradient.make_step("bim", model_fn, norm, cfg)  # PGD without random start.
  run = lambda eps, rows=None: gradient.run_batched(  # pylint: disable=unnecessary-lambda-assignment
      step, x if rows is None else x[rows], y if rows is None else y[rows], eps,
      batch_size=batch_size, strategy=strategy)
  n = len(x)
  replicas = strategy.num_replicas_in_sync if strategy is not None else 1
  shape = (-1,) + (1,) * (x.ndim - 1)
  wrong = _labels(model, x, batch_size, strategy) != y
  adv_hi = run(np.full(n, eps_max, np.float32))
  found = wrong | (_labels(model, adv_hi, batch_size, strategy) != y)
  lo = np.zeros(n, np.float32)
  hi = np.full(n, eps_max, np.float32)
  best = np.where(found.reshape(shape), adv_hi, x)
  need = np.full(n, steps)           # Bisection steps per sample.
  tried = np.float32(eps_max)        # The largest eps tried so far.
  level, limit = 0, float(eps_max)  # `limit`: `tried` as the Python float reported.
  while cap is not None and limit < cap and not found.all():
    level += 1
    limit = float(min(eps_max * 2.0 ** level, cap))
    nxt = np.float32(limit)
    rows = np.flatnonzero(~found)
    # Padded with found rows to the full run's batch, so the attack is not traced again.
    pad = max(0, min(n, batch_size * replicas) - len(rows))
    rows = np.concatenate([rows, np.flatnonzero(found)[:pad]])
    adv = run(np.full(len(rows), nxt, np.float32), rows)
    flips = (_labels(model, adv, batch_size, strategy) != y[rows]) & ~found[rows]
    hit = rows[flips]
    found[hit] = True
    lo[hit], hi[hit] = tried, nxt
    best[hit] = adv[flips]
    need[hit] = steps + level - 1
    tried = nxt
  active = found & ~wrong
  it = range(int(need[active].max()) if active.any() else steps)
  if progress:
    from tfhull import console  # pylint: disable=import-outside-toplevel
    it = console.progress(it, desc=f"minimal eps ({norm})", unit="step", leave=False)
  for i in it:
    live = active & (i < need)
    mid = np.where(live, (lo + hi) / 2, hi).astype(np.float32)
    adv = run(mid)
    flips = live & (_labels(model, adv, batch_size, strategy) != y)
    hi = np.where(flips, mid, hi)
    lo = np.where(live & ~flips, mid, lo)
    best[flips] = adv[flips]
  eps = np.where(wrong, 0.0, np.where(found, hi, np.inf)).astype(np.float32)
  lower = np.where(wrong, 0.0, np.where(found, lo, tried)).astype(np.float32)
  best[wrong] = x[wrong]
  return MinimalResult(eps=eps, lower=lower, x_adv=best.astype(np.float32), found=found,
                       tol=eps_max / 2 ** steps, eps_tried=limit)


def flip_points(model, x: np.ndarray, x_adv: np.ndarray, *, tol: float = 1e-3,
                max_steps: int = 40, batch_size: int = 512, strategy=None) -> FlipPoints:
  """Bisects each segment x -> x_adv to the point where the top-two logits tie within `tol`.

  The returned point is the end of the final bracket on the adversarial side, so the model's
  label there already differs from its label at x.
  """
  n = len(x)
  x64, d = x.astype(np.float64), (x_adv.astype(np.float64) - x.astype(np.float64))
  shape = (-1,) + (1,) * (x.ndim - 1)
  at = lambda t: (x64 + t.reshape(shape) * d).astype(np.float32)  # pylint: disable=unnecessary-lambda-assignment
  logits = lambda v: models.predict(model, v, batch_size=batch_size, strategy=strategy)  # pylint: disable=unnecessary-lambda-assignment
  clean = logits(x).argmax(1)
  end = logits(x_adv)
  found = end.argmax(1) != clean
  lo, hi = np.zeros(n), np.ones(n)
  rows = np.arange(n)
  gap = np.where(found, end[rows, end.argmax(1)] - end[rows, clean], np.nan)
  for _ in range(max_steps):
    active = found & ~(gap < tol)
    if not active.any():
      break
    mid = np.where(active, (lo + hi) / 2, hi)
    out = logits(at(mid))
    same = out.argmax(1) == clean
    lo = np.where(active & same, mid, lo)
    hi = np.where(active & ~same, mid, hi)
    moved = active & ~same
    gap = np.where(moved, out[rows, out.argmax(1)] - out[rows, clean], gap)
  point = at(np.where(found, hi, 0.0))
  other = logits(point).argmax(1)
  return FlipPoints(
      point=point, t=np.where(found, hi, np.nan).astype(np.float32),
      classes=np.where(found[:, None], np.stack([clean, other], 1), -1).astype(np.int32),
      gap=np.where(found, gap, np.nan).astype(np.float32),
      distance=np.where(found, np.linalg.norm((point - x).reshape(n, -1), axis=1),
                        np.nan).astype(np.float32),
      found=found)
