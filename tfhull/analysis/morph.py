"""Morphing and ambiguity: the model and the training hull along segments between samples.

  m = morph(model, xa, xb, train_points, steps=11)
  m.labels (P, T), m.gap (P, T), m.hull_distance (P, T), m.label_changes_inside (P,)

x_t = (1 - t) x_a + t x_b for t in linspace(0, 1, steps). The hull distances of the segment points
come from `tfhull.hull.project_onto_hull` (certified; "inside" = its INSIDE verdict). A segment
between two training points lies inside the training hull (convexity).
Ambiguity: a point is ambiguous when its top-two logit gap is below delta.
"""

import dataclasses

import numpy as np

from tfhull import models


def top_two_gap(logits: np.ndarray) -> np.ndarray:
  """(...,) largest minus second-largest logit (>= 0) over the last axis."""
  z = np.sort(np.asarray(logits, np.float64), -1)
  return z[..., -1] - z[..., -2]


def ambiguous_fraction(gap: np.ndarray, delta: float):
  """Fraction of finite gaps below delta (None when there are none)."""
  g = np.asarray(gap, np.float64).reshape(-1)
  g = g[np.isfinite(g)]
  return float(np.mean(g < delta)) if g.size else None


@dataclasses.dataclass(frozen=True)
class Morph:
  """P segments sampled at T points."""
  t: np.ndarray              # (T,) in [0, 1].
  labels: np.ndarray         # (P, T) predicted class.
  gap: np.ndarray            # (P, T) top-two logit gap.
  margin: np.ndarray         # (P, T) logit of the label at t = 0 minus the best other.
  hull_distance: np.ndarray  # (P, T) certified upper bound of the distance to the hull.
  hull_lower: np.ndarray     # (P, T) certified lower bound.
  inside: np.ndarray         # (P, T) bool, the solver's INSIDE verdict.

  @property
  def label_changes(self) -> np.ndarray:
    """(P,) bool: the label changes somewhere along the segment."""
    return np.any(self.labels[:, 1:] != self.labels[:, :-1], axis=1)

  @property
  def label_changes_inside(self) -> np.ndarray:
    """(P,) bool: the label changes between two consecutive points that are both inside."""
    both = self.inside[:, 1:] & self.inside[:, :-1]
    return np.any((self.labels[:, 1:] != self.labels[:, :-1]) & both, axis=1)


def morph(model, xa: np.ndarray, xb: np.ndarray, train_points: np.ndarray, *, steps: int = 11,
          batch_size: int = 512, strategy=None, **solver_kwargs) -> Morph:
  """Labels, gaps and hull distances along the segments xa[i] -> xb[i].

  Args:
    model: Keras model (logits) on inputs shaped like xa.
    xa, xb: (P, ...) segment ends; train_points: (n, d) the hull's points, d = prod(shape).
    **solver_kwargs: passed to `project_onto_hull`.
  """
  from tfhull.hull.solver import project_onto_hull  # pylint: disable=import-outside-toplevel
  xa = np.asarray(xa, np.float64)
  xb = np.asarray(xb, np.float64)
  p = len(xa)
  t = np.linspace(0.0, 1.0, steps)
  tt = t.reshape((1, -1) + (1,) * (xa.ndim - 1))
  pts = ((1 - tt) * xa[:, None] + tt * xb[:, None]).astype(np.float32)
  flat = pts.reshape(p * steps, *xa.shape[1:])
  z = models.predict(model, flat, batch_size=batch_size, strategy=strategy).reshape(p, steps, -1)
  labels = z.argmax(-1)
  first = labels[:, :1]
  own = np.take_along_axis(z, first[..., None].repeat(steps, 1), -1)[..., 0]
  other = z.copy()
  np.put_along_axis(other, first[..., None].repeat(steps, 1), -np.inf, -1)
  res = project_onto_hull(np.asarray(train_points).reshape(len(train_points), -1),
                          flat.reshape(p * steps, -1), **solver_kwargs)
  shape = (p, steps)
  return Morph(t=t, labels=labels, gap=top_two_gap(z), margin=own - other.max(-1),
               hull_distance=res.upper_bound.reshape(shape),
               hull_lower=res.lower_bound.reshape(shape),
               inside=(res.verdict == 1).reshape(shape))


def pairs(labels: np.ndarray, count: int, *, same: bool, seed: int = 0) -> np.ndarray:
  """(k, 2) index pairs (i, j), i != j, with equal (same=True) or different labels, at most
  `count`, drawn with a seeded generator."""
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  out = []
  order = rng.permutation(len(labels))
  for i in order:
    cand = np.flatnonzero((labels == labels[i]) == same)
    cand = cand[cand != i]
    if len(cand):
      out.append((int(i), int(rng.choice(cand))))
    if len(out) >= count:
      break
  return np.array(out, np.int64).reshape(-1, 2)
