"""The author's sketching method (benchmarks/peers/sketching.py) against the exact references."""

import pathlib
import sys

import numpy as np
import pytest

from tfhull.hull import reference

REPO = pathlib.Path(__file__).resolve().parents[1]
try:
  from benchmarks import hull_solver  # pylint: disable=g-import-not-at-top
  from benchmarks.peers import sketching  # pylint: disable=g-import-not-at-top
except ImportError:  # Bare `pytest` with an editable install older than benchmarks/.
  sys.path.insert(0, str(REPO))
  from benchmarks import hull_solver  # pylint: disable=g-import-not-at-top
  from benchmarks.peers import sketching  # pylint: disable=g-import-not-at-top


def _objective(a, q, x):
  return 0.5 * float(np.sum((a.T @ x - q) ** 2))


def test_cauchy_point_is_the_first_minimiser_along_the_projected_path():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((60, 5))
  q = rng.standard_normal(5) + 1
  alpha = rng.dirichlet(np.ones(60)) * rng.binomial(1, 0.5, 60)
  alpha[0] = 1.0                                       # An entry at the upper bound.
  g = a @ (a.T @ alpha - q)
  xc = sketching.cauchy_point(a, q, alpha)
  ts = np.linspace(0, 1, 200001) * 4 / np.abs(g).max()
  path = np.clip(alpha[None] - ts[:, None] * g[None], 0, 1)   # (T, n)
  f = 0.5 * np.sum((path @ a - q) ** 2, axis=1)
  first = int(np.argmax(np.diff(f) > 0))               # First grid point where f turns up.
  assert 0 < first < len(ts) - 2
  assert _objective(a, q, xc) <= f[first] + 1e-9
  t_c = ts[max(first - 1, 0)], ts[first + 1]         # xc lies on the path between them.
  assert np.all(xc >= 0) and np.all(xc <= 1)
  lo, hi = (np.clip(alpha - t * g, 0, 1) for t in t_c)
  assert np.all(xc >= np.minimum(lo, hi) - 1e-12) and np.all(xc <= np.maximum(lo, hi) + 1e-12)


def test_sketching_matches_wolfe_on_the_authors_gaussian_setup():
  """The author's notebook data: Gaussian rows, queries N(0, I) + 1 (outside the hull)."""
  rng = np.random.default_rng(1)
  a = rng.standard_normal((500, 16))
  for q in rng.standard_normal((4, 16)) + 1:
    s = sketching.sketch_project(a, q)
    exact = reference.min_norm_point(a, q)
    assert s.distance == pytest.approx(exact.distance, rel=1e-9)
    assert np.all(s.weights >= 0) and s.weights.sum() == pytest.approx(1.0)
    assert s.gap <= 1e-9 * s.distance ** 2


@pytest.fixture(scope="module")
def images():
  a, _ = hull_solver.structured_images(400, seed=0)
  q, _ = hull_solver.structured_images(3, seed=0, stream=1)
  return a.astype(np.float64), q.astype(np.float64)


def test_sketching_on_images_centred_exact_published_bounded_by_its_gap(images):
  """784-d nonnegative images: centred, the method reaches Wolfe's minimiser; as published
  (uncentred) it may stop early, but its reported Frank-Wolfe gap bounds the excess, and its
  point is feasible (the distance is never below the exact one)."""
  a, qs = images
  for q in qs:
    exact = reference.min_norm_point(a, q).distance
    centred = sketching.sketch_project(a, q, sketching.SketchConfig(centre=True))
    assert centred.distance == pytest.approx(exact, rel=1e-6)
    published = sketching.sketch_project(a, q)
    assert published.distance >= exact * (1 - 1e-12)
    assert 0.5 * (published.distance ** 2 - exact ** 2) <= published.gap * (1 + 1e-9) + 1e-12
    p = published.weights @ a
    assert np.linalg.norm(q - p) == pytest.approx(published.distance, rel=1e-12)
