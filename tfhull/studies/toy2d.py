"""How interpolating models extend their decision boundaries outside the training hull, in 2-D.

  regimes = [parse_regime(s) for s in ("adam", "sgd:learning_rate=0.1", "adam:init_scale=3")]
  result = run_study(ds, widths=(4, 16, 64, 256), regimes=regimes, depth=2)
  result.disagreement_by_width   # {width: {"inside": f, "outside": f}}

Every (width, regime) MLP is trained until it classifies all training points correctly. Their
labels are evaluated on a grid over a window `window` times the size of the training hull's
bounding box; a grid point is inside the hull when it falls in a simplex of the training points'
Delaunay triangulation. Two interpolating models agree on every training point; the study
measures where else they disagree: inside the hull versus outside it.
"""

import dataclasses
import itertools
from typing import Sequence

from absl import logging
import numpy as np

from tfhull import models
from tfhull import training
from tfhull.errors import UserError

_REGIME_KEYS = {"learning_rate": float, "weight_decay": float, "init_scale": float,
                "momentum": float, "schedule": str, "batch_size": int}


@dataclasses.dataclass(frozen=True)
class Regime:
  """A named training regime: the optimizer and overrides of `training.TrainConfig`."""
  name: str
  optimizer: str
  overrides: tuple = ()   # ((field, value), ...)

  def config(self, base: training.TrainConfig) -> training.TrainConfig:
    return dataclasses.replace(base, optimizer=self.optimizer, **dict(self.overrides))


def parse_regime(spec: str) -> Regime:
  """`OPTIMIZER[:KEY=VALUE,...]`, keys among learning_rate, weight_decay, init_scale, momentum,
  schedule, batch_size; e.g. `sgd:learning_rate=0.1`, `adam:init_scale=3`."""
  opt, _, rest = spec.strip().partition(":")
  if opt not in training.OPTIMIZERS:
    raise UserError(f"regime {spec!r}: unknown optimizer {opt!r}; use "
                    f"{' or '.join(training.OPTIMIZERS)}[:KEY=VALUE,...]")
  overrides = []
  for item in filter(None, rest.split(",")):
    key, eq, value = item.partition("=")
    if not eq or key.strip() not in _REGIME_KEYS:
      raise UserError(f"regime {spec!r}: {item!r} must be KEY=VALUE with KEY in "
                      f"{', '.join(_REGIME_KEYS)}")
    try:
      overrides.append((key.strip(), _REGIME_KEYS[key.strip()](value.strip())))
    except ValueError:
      raise UserError(f"regime {spec!r}: {key}={value!r} is not a number") from None
  return Regime(spec.strip(), opt, tuple(overrides))


def window_grid(points: np.ndarray, window: float, resolution: int):
  """(resolution**2, 2) grid over the bounding box of `points` scaled `window` times about its
  centre, and the (x0, x1, y0, y1) extent."""
  lo, hi = points.min(0), points.max(0)
  centre, half = (lo + hi) / 2, (hi - lo) / 2 * window
  xs = np.linspace(centre[0] - half[0], centre[0] + half[0], resolution)
  ys = np.linspace(centre[1] - half[1], centre[1] + half[1], resolution)
  gx, gy = np.meshgrid(xs, ys)
  return (np.c_[gx.ravel(), gy.ravel()].astype(np.float32),
          (float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])))


def inside_hull(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
  """(q,) bool: queries inside the convex hull of the 2-D points (Delaunay simplices)."""
  from scipy.spatial import Delaunay  # pylint: disable=import-outside-toplevel
  return Delaunay(points).find_simplex(queries) >= 0


def hull_polygon(points: np.ndarray) -> np.ndarray:
  """(m + 1, 2) closed polygon of the hull's vertices, counter-clockwise."""
  from scipy.spatial import ConvexHull  # pylint: disable=import-outside-toplevel
  v = points[ConvexHull(points).vertices]
  return np.r_[v, v[:1]]


def disagreement(a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> dict:
  """Fraction of grid points where label arrays a and b differ, inside and outside the hull."""
  differ = a != b
  return {"inside": float(differ[inside].mean()) if inside.any() else None,
          "outside": float(differ[~inside].mean()) if (~inside).any() else None}


@dataclasses.dataclass
class StudyResult:
  """Per model (width x regime): metrics and grid labels; disagreement summaries."""
  widths: tuple
  regimes: tuple
  grid: np.ndarray          # (G, 2).
  extent: tuple
  inside: np.ndarray        # (G,) bool.
  polygon: np.ndarray       # hull polygon.
  labels: np.ndarray        # (W, R, G) predicted class on the grid.
  train_predictions: np.ndarray  # (W, R, n) predicted class of every training point.
  train_accuracy: np.ndarray  # (W, R).
  test_accuracy: np.ndarray   # (W, R).
  params: np.ndarray          # (W,).
  pairs: list               # [{"a": (w, r), "b": (w, r), "inside", "outside"}] interpolating pairs.
  disagreement_by_width: dict   # width -> mean over regime pairs {"inside", "outside"}.
  disagreement_by_regime: dict  # regime -> mean over width pairs.


def _mean(entries, key):
  vals = [e[key] for e in entries if e[key] is not None]
  return float(np.mean(vals)) if vals else None


# pipelines.toy2d's flags, named when a model does not reach interpolation.
TOY2D_FLAGS = training.FlagNames(study="toy2d (every model is trained to interpolation)",
                                 epochs="--toy_epochs",
                                 learning_rate="--toy_learning_rate (or a regime's learning_rate)",
                                 width="--toy_widths")


def run_study(ds, *, widths: Sequence[int], regimes: Sequence[Regime], depth: int = 2,
              base: training.TrainConfig = training.TrainConfig(epochs=2000,
                                                                until_interpolation=True),
              window: float = 3.0, resolution: int = 200,
              flag_names: training.FlagNames = TOY2D_FLAGS) -> StudyResult:
  """Trains every (width, regime) MLP on the 2-D dataset `ds` and compares their partitions."""
  if ds.input_shape != (2,):
    raise UserError(f"the 2-D study needs 2-D points (--dataset=toy2d:moons|spirals|blobs), got "
                    f"inputs of shape {ds.input_shape}")
  grid, extent = window_grid(ds.x_train, window, resolution)
  inside = inside_hull(ds.x_train, grid)
  w_n, r_n = len(widths), len(regimes)
  labels = np.zeros((w_n, r_n, len(grid)), np.int32)
  train_pred = np.zeros((w_n, r_n, len(ds.x_train)), np.int32)
  train_acc, test_acc = np.zeros((w_n, r_n)), np.zeros((w_n, r_n))
  params = np.zeros(w_n, np.int64)
  for i, width in enumerate(widths):
    for j, regime in enumerate(regimes):
      spec = f"mlp:width={width},depth={depth}"
      logging.info("toy2d: training %s with %s", spec, regime.name)
      res = training.train(spec, ds, regime.config(base), verbose=0, flag_names=flag_names)
      labels[i, j] = models.predict(res.model, grid, batch_size=4096).argmax(1)
      train_pred[i, j] = models.predict(res.model, ds.x_train, batch_size=4096).argmax(1)
      train_acc[i, j], test_acc[i, j] = (res.metrics["train_accuracy"],
                                         res.metrics["test_accuracy"])
      params[i] = res.metrics["params"]
  ok = train_acc == 1.0
  pairs = []
  for (a, b) in itertools.combinations(itertools.product(range(w_n), range(r_n)), 2):
    if ok[a] and ok[b]:
      pairs.append({"a": a, "b": b, **disagreement(labels[a], labels[b], inside)})
  by_width = {int(widths[i]): {k: _mean([p for p in pairs if p["a"][0] == p["b"][0] == i], k)
                               for k in ("inside", "outside")} for i in range(w_n)}
  by_regime = {regimes[j].name: {k: _mean([p for p in pairs if p["a"][1] == p["b"][1] == j], k)
                                 for k in ("inside", "outside")} for j in range(r_n)}
  return StudyResult(widths=tuple(int(w) for w in widths), regimes=tuple(r.name for r in regimes),
                     grid=grid, extent=extent, inside=inside, polygon=hull_polygon(ds.x_train),
                     labels=labels, train_predictions=train_pred, train_accuracy=train_acc, test_accuracy=test_acc,
                     params=params, pairs=pairs, disagreement_by_width=by_width,
                     disagreement_by_regime=by_regime)
