"""Polynomial decision boundaries: fits identical on the training set, different outside the hull.

  result = run_study(x_train, y_train, degrees=(6, 12, 20), ridge=1e-3, inits=3, seed=0)

Binary labels y in {0, 1} become targets t = 2y - 1. Inputs are mapped to [-1, 1]^2 (by the
training data's bounding box) and expanded into all monomials of degree <= k,
(k + 1)(k + 2) / 2 features: below, equal to or above n training points for the chosen degrees.
Fits of t on the features:
  - `min_norm`: the minimum-norm least-squares solution, pinv(Phi) t;
  - `ridge`: (Phi^T Phi + lambda I)^-1 Phi^T t;
  - `gd_init<i>`: the point gradient descent on the squared loss converges to from a random
    start w0 (a random direction of norm `init_scale` x |min_norm|): w0 + pinv(Phi)(t - Phi w0)
    (GD never changes w0's component orthogonal to Phi's row space); `gd_init0` starts at 0 and
    is the minimum-norm solution.
With at least as many monomials as points, min_norm and every gd fit interpolate (same signs on
every training point); the study measures where the sign boundaries of every fit that classifies
all training points correctly (ridge included, when it does) differ inside and outside the
training hull.
"""

import dataclasses
import itertools
from typing import Sequence

import numpy as np

from tfhull.errors import UserError
from tfhull.studies import toy2d


def num_monomials(degree: int) -> int:
  return (degree + 1) * (degree + 2) // 2


def features(x: np.ndarray, degree: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
  """(m, num_monomials(degree)) float64 monomials x1^a x2^b, a + b <= degree, of inputs mapped
  to [-1, 1]^2 by the box [lo, hi]."""
  z = 2 * (np.asarray(x, np.float64) - lo) / np.maximum(hi - lo, 1e-12) - 1
  cols = [z[:, 0] ** a * z[:, 1] ** (d - a) for d in range(degree + 1) for a in range(d + 1)]
  return np.stack(cols, 1)


def fit_all(phi: np.ndarray, t: np.ndarray, *, ridge: float, inits: int, seed: int,
            init_scale: float = 1.0) -> dict:
  """name -> weight vector (p,) for every fit of targets t (n,) on features phi (n, p)."""
  pinv = np.linalg.pinv(phi, rcond=1e-12)
  p = phi.shape[1]
  fits = {"min_norm": pinv @ t,
          "ridge": np.linalg.solve(phi.T @ phi + ridge * np.eye(p), phi.T @ t)}
  rng = np.random.default_rng(seed)
  for i in range(inits):
    u = rng.normal(size=p)
    w0 = (np.zeros(p) if i == 0 else
          u / np.linalg.norm(u) * init_scale * np.linalg.norm(fits["min_norm"]))
    fits[f"gd_init{i}"] = w0 + pinv @ (t - phi @ w0)
  return fits


@dataclasses.dataclass
class PolyResult:
  degrees: tuple
  monomials: tuple
  fit_names: tuple
  n_train: int
  grid: np.ndarray
  extent: tuple
  inside: np.ndarray
  polygon: np.ndarray
  labels: np.ndarray          # (D, F, G) sign class (0/1) on the grid.
  train_accuracy: np.ndarray  # (D, F) sign accuracy on the training points.
  exact: np.ndarray           # (D, F) bool: the fit reproduces the targets (|Phi w - t| < 1e-6).
  test_accuracy: np.ndarray   # (D, F).
  norms: np.ndarray           # (D, F) L2 norm of each weight vector.
  pairs: list                 # interpolating pairs at the same degree with their disagreement.
  disagreement_by_degree: dict


def run_study(x_train, y_train, x_test, y_test, *, degrees: Sequence[int], ridge: float = 1e-3,
              inits: int = 3, init_scale: float = 1.0, seed: int = 0, window: float = 3.0,
              resolution: int = 200) -> PolyResult:
  """Fits every degree with every method and compares the sign boundaries on a window grid."""
  if np.shape(x_train)[1:] != (2,):
    raise UserError(f"the polynomial study needs 2-D points (--dataset=toy2d:...), got inputs "
                    f"of shape {np.shape(x_train)[1:]}")
  if set(np.unique(y_train)) - {0, 1}:
    raise UserError("the polynomial study needs two classes; pass --classes=0,1")
  if not degrees or min(degrees) < 1:
    raise UserError("--poly_degrees must list positive integers")
  lo, hi = x_train.min(0), x_train.max(0)
  grid, extent = toy2d.window_grid(x_train, window, resolution)
  inside = toy2d.inside_hull(x_train, grid)
  t = 2.0 * y_train - 1
  names = None
  labels, train_acc, test_acc, norms, exact = [], [], [], [], []
  for k in degrees:
    phi = features(x_train, k, lo, hi)
    fits = fit_all(phi, t, ridge=ridge, inits=inits, seed=seed, init_scale=init_scale)
    names = tuple(fits)
    g, tr, te = features(grid, k, lo, hi), phi, features(x_test, k, lo, hi)
    labels.append([(g @ w > 0).astype(np.int32) for w in fits.values()])
    train_acc.append([float(np.mean((tr @ w > 0) == (y_train == 1))) for w in fits.values()])
    test_acc.append([float(np.mean((te @ w > 0) == (y_test == 1))) for w in fits.values()])
    norms.append([float(np.linalg.norm(w)) for w in fits.values()])
    exact.append([float(np.abs(tr @ w - t).max()) < 1e-6 for w in fits.values()])
  labels, train_acc = np.array(labels), np.array(train_acc)
  pairs, by_degree = [], {}
  for d, k in enumerate(degrees):
    ok = [f for f in range(len(names)) if train_acc[d, f] == 1.0]  # Ridge too, when it does.
    here = [{"degree": int(k), "a": names[a], "b": names[b],
             **toy2d.disagreement(labels[d, a], labels[d, b], inside)}
            for a, b in itertools.combinations(ok, 2)]
    pairs += here
    by_degree[int(k)] = {key: (float(np.mean([p[key] for p in here])) if here else None)
                         for key in ("inside", "outside")}
  return PolyResult(degrees=tuple(int(k) for k in degrees),
                    monomials=tuple(num_monomials(k) for k in degrees), fit_names=names,
                    n_train=len(x_train), grid=grid, extent=extent, inside=inside,
                    polygon=toy2d.hull_polygon(x_train), labels=labels,
                    train_accuracy=train_acc, exact=np.array(exact),
                    test_accuracy=np.array(test_acc),
                    norms=np.array(norms), pairs=pairs, disagreement_by_degree=by_degree)
