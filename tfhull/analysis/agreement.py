"""Agreement of several interpolating models inside versus outside the training hull.

  mix = mixtures(x_train, y_train, 500, same_class=True, seed=0)  # inside the hull by construction
  labels = np.stack([predict(m, mix.points).argmax(1) for m in models])  # (k, N)
  r = agreement(labels, "same-class mixtures")
  r.disagreement.estimate, r.disagreement.low, r.disagreement.high

A point is a disagreement when not all k models give it the same label; the pairwise rate is the
fraction of the k (k - 1) / 2 model pairs that differ there, averaged over the points. Intervals:
the percentile bootstrap over the points (`tfhull.analysis.intervals`); the k models are fixed
(their seed variation is what is measured, not resampled).
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

from tfhull.analysis import intervals as iv_lib


@dataclasses.dataclass(frozen=True)
class Mixtures:
  """Convex combinations of training points: points = sum_j weights[:, j] x[index[:, j]]."""
  points: np.ndarray    # (m, *shape) float32.
  weights: np.ndarray   # (m, parts) float64, >= 0, rows sum to 1 (Dirichlet).
  index: np.ndarray     # (m, parts) int64 rows of the training set.


@dataclasses.dataclass(frozen=True)
class Agreement:
  """Disagreement of k models on the points of one region."""
  region: str
  points: int
  models: int
  disagreement: Optional[iv_lib.Interval]  # fraction of points where not all models agree.
  pairwise: Optional[iv_lib.Interval]      # mean over points of the fraction of pairs differing.

  def as_dict(self) -> dict:
    return {"region": self.region, "points": self.points, "models": self.models,
            "disagreement": self.disagreement.as_dict() if self.disagreement else None,
            "pairwise": self.pairwise.as_dict() if self.pairwise else None}


def _labels(labels) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 2 or labels.shape[0] < 2:
    raise ValueError(f"labels must be (k >= 2 models, N points), got shape {labels.shape}")
  return labels


def disagrees(labels) -> np.ndarray:
  """(N,) bool: not all k models give the point the same label; labels (k, N)."""
  labels = _labels(labels)
  return np.any(labels != labels[:1], axis=0)


def pairwise(labels) -> np.ndarray:
  """(N,) float: fraction of the k (k - 1) / 2 model pairs whose labels differ at each point."""
  labels = _labels(labels)
  k = labels.shape[0]
  i, j = np.triu_indices(k, 1)
  return np.mean(labels[i] != labels[j], axis=0)


def agreement(labels, region: str, *, resamples: int = 1000, seed: int = 0) -> Agreement:
  """Disagreement fraction and mean pairwise disagreement of labels (k, N), with 95% intervals
  (bootstrap over the N points; None when N = 0)."""
  labels = _labels(labels)
  kw = dict(resamples=resamples, seed=seed)
  return Agreement(region=region, points=int(labels.shape[1]), models=int(labels.shape[0]),
                   disagreement=iv_lib.interval([disagrees(labels)], "mean", **kw),
                   pairwise=iv_lib.interval([pairwise(labels)], "mean", **kw))


def mixtures(x, y, count: int, *, same_class: bool, parts: int = 3, alpha: float = 1.0,
             seed: int = 0) -> Mixtures:
  """`count` random convex combinations of `parts` distinct training points each.

  Args:
    x: (n, *shape) training inputs; y: (n,) their labels.
    same_class: all parts from one class (drawn uniformly among classes with >= parts points);
      otherwise the parts come from `parts` distinct classes (needs that many classes).
    alpha: Dirichlet concentration of the weights (1: uniform on the simplex).
  """
  x, y = np.asarray(x), np.asarray(y).ravel()
  if len(x) != len(y) or parts < 2 or count < 0 or alpha <= 0:
    raise ValueError(f"need len(x) == len(y) ({len(x)} vs {len(y)}), parts >= 2 ({parts}), "
                     f"count >= 0 ({count}), alpha > 0 ({alpha})")
  rng = np.random.default_rng(seed)
  classes, counts = np.unique(y, return_counts=True)
  members = {c: np.flatnonzero(y == c) for c in classes}
  index = np.empty((count, parts), np.int64)
  if same_class:
    pool = classes[counts >= parts]
    if not len(pool):
      raise ValueError(f"no class has {parts} training points for same-class mixtures")
    for r, c in enumerate(rng.choice(pool, count)):
      index[r] = rng.choice(members[c], parts, replace=False)
  else:
    if len(classes) < parts:
      raise ValueError(f"mixed-class mixtures of {parts} parts need {parts} classes, "
                       f"the labels have {len(classes)}")
    for r in range(count):
      index[r] = [rng.choice(members[c]) for c in rng.choice(classes, parts, replace=False)]
  weights = rng.dirichlet(np.full(parts, alpha), count)
  flat = x.reshape(len(x), -1).astype(np.float64)
  pts = np.einsum("mp,mpd->md", weights, flat[index]) if count else np.zeros((0, flat.shape[1]))
  return Mixtures(points=pts.reshape((count,) + x.shape[1:]).astype(np.float32),
                  weights=weights, index=index)


def ray_points(x, anchor, t: Sequence[float]) -> np.ndarray:
  """(T, q, *shape) points anchor + t (x - anchor): t = 0 the anchor (the hull projection),
  t = 1 the sample, t > 1 beyond it. x: (q, *shape); anchor: (q, d) or (q, *shape)."""
  x = np.asarray(x, np.float32)
  anchor = np.asarray(anchor, np.float32).reshape(x.shape)
  t = np.asarray(t, np.float32).reshape((-1,) + (1,) * x.ndim)
  return anchor[None] + t * (x - anchor)[None]


def ratio_bins(ratio, edges: Sequence[float]) -> np.ndarray:
  """(q,) bin of each d_hull/d_NN value: i for edges[i] <= r < edges[i + 1] (the last bin
  includes its right edge), -1 outside the edges or not finite."""
  edges = np.asarray(edges, np.float64)
  if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
    raise ValueError(f"bin edges must be >= 2 increasing numbers, got {edges.tolist()}")
  r = np.asarray(ratio, np.float64)
  b = np.searchsorted(edges, r, side="right") - 1
  b[r == edges[-1]] = len(edges) - 2
  b[~np.isfinite(r) | (b < 0) | (b >= len(edges) - 1)] = -1
  return b


def _pct(iv) -> str:
  return (f"{100 * iv.estimate:.1f}% (95% interval {100 * iv.low:.1f}-{100 * iv.high:.1f}%)"
          if iv else "n/a")


def headline(inside: Sequence[Agreement], outside: Sequence[Agreement]) -> str:
  """One sentence from the numbers: each inside region's disagreement (e.g. mixtures of training
  points) and each outside one's (test points, far ray points), and what their intervals say."""
  ins = [a for a in inside if a.disagreement]
  outs = [a for a in outside if a.disagreement]
  if not ins or not outs:
    return "Agreement not measured: a region without points."
  lo = lambda a: a.disagreement.low  # pylint: disable=unnecessary-lambda-assignment
  hi = lambda a: a.disagreement.high  # pylint: disable=unnecessary-lambda-assignment
  top_in = max(ins, key=lambda a: a.disagreement.estimate)
  low_out = min(outs, key=lambda a: a.disagreement.estimate)
  if min(map(lo, outs)) > max(map(hi, ins)):
    verdict = "they agree inside the training hull and disagree outside it"
  elif lo(top_in) > hi(low_out):
    verdict = (f"membership in the hull alone does not decide agreement: they disagree more on "
               f"{top_in.region} (inside) than on {low_out.region} (outside)")
  else:
    verdict = "the intervals of inside and outside overlap"
  listing = lambda regions: "; ".join(  # pylint: disable=unnecessary-lambda-assignment
      f"{_pct(a.disagreement)} of {a.region}" for a in regions)
  return (f"The {ins[0].models} models disagree, inside the training hull, on {listing(ins)}; "
          f"outside it, on {listing(outs)}: {verdict}.")
