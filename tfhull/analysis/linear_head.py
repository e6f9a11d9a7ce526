"""Feature space with a linear head: decision regions are polyhedra.

With logits z = W^T f + b, the region of class c is {f : (w_c - w_k)^T f + b_c - b_k >= 0 for all
k}, a convex polyhedron. An affine function attains its minimum over a convex hull at a vertex,
so the smallest margin of class c over the hull of its training features is a minimum over those
features: if it is positive, the whole class hull lies inside the class's own region.
"""

import dataclasses

import numpy as np


def head_of(model):
  """(W (k, c), b (c,)) of the model's `logits` Dense layer, float64."""
  layer = model.get_layer("logits")
  w, b = layer.get_weights()
  return w.astype(np.float64), b.astype(np.float64)


def margins(features: np.ndarray, w: np.ndarray, b: np.ndarray, cls: np.ndarray) -> np.ndarray:
  """(m,) min over k != cls of the affine margin (w_cls - w_k)^T f + b_cls - b_k."""
  z = features.astype(np.float64) @ w + b
  own = z[np.arange(len(z)), cls]
  z[np.arange(len(z)), cls] = -np.inf
  return own - z.max(1)


@dataclasses.dataclass
class LinearHeadStats:
  class_min_margin: np.ndarray   # (c,) min margin over each class's training-feature hull.
  boundary_distance: np.ndarray  # (q,) test feature -> boundary of its predicted region.
  predicted: np.ndarray          # (q,) predicted class of each test feature.


def analyze(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
            w: np.ndarray, b: np.ndarray) -> LinearHeadStats:
  """Class-hull margins and test-feature distances to the nearest decision boundary.

  The distance from a point inside the polyhedron {f : a_k^T f + beta_k >= 0} to its boundary is
  min_k (a_k^T f + beta_k) / ||a_k||, over the facets a_k = w_c - w_k.
  """
  c = w.shape[1]
  class_min = np.full(c, np.nan)
  for k in range(c):
    rows = train_labels == k
    if rows.any():
      class_min[k] = margins(train_features[rows], w, b, np.full(rows.sum(), k)).min()
  z = test_features.astype(np.float64) @ w + b
  pred = z.argmax(1)
  wp = w.T[pred]                                  # (q, k)
  diff = wp[:, None, :] - w.T[None]               # (q, c, k): w_pred - w_j
  gap = z[np.arange(len(z)), pred][:, None] - z   # (q, c)
  norm = np.linalg.norm(diff, axis=-1)
  dist = np.where(np.arange(c)[None] == pred[:, None], np.inf, gap / np.maximum(norm, 1e-30))
  return LinearHeadStats(class_min_margin=class_min, boundary_distance=dist.min(1),
                         predicted=pred)
