"""Extrapolation direction: the model's label and margin along the ray from a sample's hull
projection through the sample.

x_t = p + t (x - p): t = 0 is the projection p on the training hull, t = 1 the sample x, t > 1
beyond it, t < 0 behind the hull's boundary (on the hull's side of the separating hyperplane).
"""

import dataclasses

import numpy as np

from tfhull import models

CATEGORIES = ("behind the hull boundary (t < 0)", "between hull and sample (0 <= t <= 1)",
              "beyond the sample (t > 1)", "no crossing")


@dataclasses.dataclass
class RayScan:
  """Labels and margins along the rays of q samples at T values of t."""
  t: np.ndarray           # (T,) increasing.
  labels: np.ndarray      # (q, T) predicted class at x_t.
  margin: np.ndarray      # (q, T) logit of the sample's predicted class minus the best other.
  crossing: np.ndarray    # (q,) first t (scanning up from t[0]) where the label changes; nan: none.
  category: np.ndarray    # (q,) int index into CATEGORIES of that first crossing.

  def fractions(self) -> dict:
    return {name: float(np.mean(self.category == i)) for i, name in enumerate(CATEGORIES)}


def ray_scan(model, x: np.ndarray, projection: np.ndarray, *, t_min: float = -1.0,
             t_max: float = 3.0, num: int = 81, batch_size: int = 1024, strategy=None,
             max_points: int = 1 << 22) -> RayScan:
  """Scans x_t = p + t (x - p) for t in linspace(t_min, t_max, num).

  Args:
    model: Keras model on inputs shaped like x (logits out).
    x: (q, ...) samples; projection: (q, d) or (q, ...) their projections onto the hull, in the
      model's input space (pixels).
    max_points: input values materialized at once (samples are scanned in chunks, so 10,000
      CIFAR-10 rays of 81 points need 16 MB, not 10 GB).
  """
  x = np.asarray(x, np.float32)
  p = np.asarray(projection, np.float32).reshape(x.shape)
  t = np.linspace(t_min, t_max, num).astype(np.float32)
  q = len(x)
  chunk = max(1, max_points // (num * int(np.prod(x.shape[1:]))))
  shape_t = t.reshape((1, -1) + (1,) * (x.ndim - 1))
  logits = np.concatenate([
      models.predict(model, (p[i:i + chunk, None] + shape_t * (x - p)[i:i + chunk, None]).reshape(
          (-1,) + x.shape[1:]), batch_size=batch_size, strategy=strategy).reshape(
              min(chunk, q - i), num, -1)
      for i in range(0, q, chunk)])
  labels = logits.argmax(-1)
  own = models.predict(model, x, batch_size=batch_size, strategy=strategy).argmax(1)
  z_own = np.take_along_axis(logits, own[:, None, None], -1)[..., 0]
  others = logits.copy()
  np.put_along_axis(others, np.broadcast_to(own[:, None, None], (q, num, 1)), -np.inf, -1)
  margin = z_own - others.max(-1)
  changed = labels[:, 1:] != labels[:, :-1]
  first = np.where(changed.any(1), changed.argmax(1), -1)
  crossing = np.where(first >= 0, t[np.maximum(first, 0) + 1], np.nan)
  category = np.full(q, 3)
  category = np.where(crossing < 0, 0, category)
  category = np.where((crossing >= 0) & (crossing <= 1), 1, category)
  category = np.where(crossing > 1, 2, category)
  return RayScan(t=t, labels=labels, margin=margin.astype(np.float32),
                 crossing=crossing.astype(np.float32), category=category)
