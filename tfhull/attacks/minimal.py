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

import numpy as np

from tfhull import models
from tfhull.attacks import gradient


@dataclasses.dataclass
class MinimalResult:
  """Per example: the smallest eps found to flip the label, and its adversarial example."""
  eps: np.ndarray      # (n,) float32; inf where PGD at eps_max does not flip; 0 if already wrong.
  lower: np.ndarray    # (n,) float32 largest eps tried that did not flip (eps - lower <= tol).
  x_adv: np.ndarray    # (n, ...) float32 adversarial example at `eps` (x where not found).
  found: np.ndarray    # (n,) bool.
  tol: float           # eps_max / 2**steps.


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


def minimal_eps(model, x: np.ndarray, y: np.ndarray, *, norm: str, eps_max: float,
                steps: int = 10, cfg: gradient.IterativeConfig = gradient.IterativeConfig(),
                batch_size: int = 128, strategy=None, progress: bool = False) -> MinimalResult:
  """Bisection over eps with PGD (no random start), per example, for the smallest flipping eps.

  Args:
    model: Keras model (logits). x: (n, ...) in [0, 1]; y: (n,) true labels.
    norm: 'inf' or '2'; eps_max: the largest radius tried; steps: bisection steps.
    cfg: PGD settings (steps, step_size as a fraction of eps); its rand_init is ignored.
  """
  model_fn = lambda v: model(v, training=False)  # pylint: disable=unnecessary-lambda-assignment
  step = gradient.make_step("bim", model_fn, norm, cfg)  # PGD without random start.
  run = lambda eps: gradient.run_batched(step, x, y, eps, batch_size=batch_size,  # pylint: disable=unnecessary-lambda-assignment
                                         strategy=strategy)
  n = len(x)
  wrong = _labels(model, x, batch_size, strategy) != y
  adv_hi = run(np.full(n, eps_max, np.float32))
  found = wrong | (_labels(model, adv_hi, batch_size, strategy) != y)
  lo = np.zeros(n, np.float32)
  hi = np.full(n, eps_max, np.float32)
  best = np.where(found.reshape((-1,) + (1,) * (x.ndim - 1)), adv_hi, x)
  active = found & ~wrong
  it = range(steps)
  if progress:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    it = tqdm(it, desc=f"minimal eps ({norm})", unit="step", leave=False)
  for _ in it:
    mid = np.where(active, (lo + hi) / 2, hi).astype(np.float32)
    adv = run(mid)
    flips = active & (_labels(model, adv, batch_size, strategy) != y)
    hi = np.where(flips, mid, hi)
    lo = np.where(active & ~flips, mid, lo)
    best[flips] = adv[flips]
  eps = np.where(wrong, 0.0, np.where(found, hi, np.inf)).astype(np.float32)
  lower = np.where(wrong, 0.0, np.where(found, lo, eps_max)).astype(np.float32)
  best[wrong] = x[wrong]
  return MinimalResult(eps=eps, lower=lower, x_adv=best.astype(np.float32), found=found,
                       tol=eps_max / 2 ** steps)


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
