"""What a report is made of: plain arrays, strings and dicts, no artifacts.

Distances are Euclidean (L2) in the coordinates of their space; images are (H, W, C) in [0, 1].
"""

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass
class HullView:
  """The queries of one split, in one space, vs that space's training hull; arrays are (q,)."""
  space: str                    # "pixel", "haar:1:top32", "layer:features", ...
  split: str                    # "test", "adv_min_pgd_2", "flip_min_pgd_2", ...
  distance: np.ndarray          # certified distance to the training hull (upper bound).
  lower_bound: np.ndarray       # certified lower bound.
  nearest_distance: np.ndarray  # distance to the nearest training point, d_NN.
  outside: np.ndarray           # bool, certified outside.
  nnz: np.ndarray               # int, training points forming the projection.
  own_class_distance: Optional[np.ndarray] = None            # to the hull of the query's class.
  nearest_other_class_distance: Optional[np.ndarray] = None  # to the nearest other class hull.
  own_class_weight: Optional[np.ndarray] = None              # projection weight on own class.


@dataclasses.dataclass
class ImageRow:
  """One test sample and its projection onto the pixel-space training hull."""
  test: np.ndarray              # (H, W, C) in [0, 1], C = 1 or 3.
  projection: np.ndarray        # (H, W, C).
  label: str                    # class name.
  distance: float               # d_hull.
  support: list                 # [(image (H, W, C), weight, class name)], by weight, <= 8 shown.


@dataclasses.dataclass
class ReportInputs:
  """Everything `write_report` shows; an absent or empty optional part skips its figure.

  adversarial: [{"norm": "2" | "inf", "perturbation": (m,), "d_hull": (m,), "d_nn": (m,),
    optional "spearman_d_hull": float}], the minimal perturbation of each clean test sample vs its
    d_hull and d_NN (input space), and their rank correlation (computed here when absent).
  robustness: {"robust_accuracy": {attack: {norm: {eps_str: acc}}},
    "worst_case_robust_accuracy": {norm: {eps_str: acc}}, "clean_accuracy": float}.
  rays: {"t": (T,) grid on x_t = p + t (x - p) (p the hull projection at t = 0, the sample at
    t = 1), "margin": (s, T) predicted-class margin along the ray for s example samples,
    "crossing": (q,) t of the first label change scanning up from the smallest t (nan:
    none), "categories": {name: fraction}, optional "examples": (s,) index into `crossing` of
    each margin row}.
  linear_head: {"class_min_margin": (c,) min of each class's margin over its training-feature
    hull (> 0: the class hull lies inside its own decision region), "boundary_distance": (q,) test
    feature to the nearest decision boundary, "hull_distance": (q,) test feature to the hull}.
  """
  title: str
  provenance: list              # [{"step", "type", "uri", "fingerprint", "created"}] per artifact.
  config: str                   # resolved flags, flagfile format.
  versions: dict                # package -> version.
  headline: list                # [(quantity, value, meaning)] strings: the summary table.
  metrics: dict                 # JSON-ready numbers behind the headline, written as is.
  history: dict                 # per-epoch lists "loss", "accuracy", "test_accuracy", "test_loss".
  hull: list                    # [HullView].
  image_rows: list              # [ImageRow]; empty for non-image data.
  adversarial: list             # see above.
  robustness: dict              # see above.
  rays: Optional[dict] = None
  linear_head: Optional[dict] = None
  class_names: tuple = ()
  intro: Optional[str] = None   # the page's opening paragraph (None: the study report's).
  summary: str = ""             # one sentence above the headline table, from its numbers.
  space_dims: dict = dataclasses.field(default_factory=dict)  # space -> dimension, for names.
  geometry: Optional[dict] = None  # boundary geometry: tfhull.report.geometry (its docstring).
