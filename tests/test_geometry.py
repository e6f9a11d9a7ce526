"""Boundary geometry on known answers: closest flip points of a linear softmax-regression model,
distances between simplices, scope on a box, morphing between training points."""

import keras
import numpy as np
import pytest
from scipy import optimize

from tfhull.analysis import boundary
from tfhull.analysis import class_hulls
from tfhull.analysis import morph as morph_lib
from tfhull.analysis import scope as scope_lib
from tfhull.hull import project_onto_hull


@pytest.fixture(scope="module")
def softmax_regression():
  """A linear (softmax-regression) Keras model on [0, 1]^20, 4 classes, and 12 inputs whose
  closest flip points lie inside the box."""
  rng = np.random.default_rng(0)
  d, c = 20, 4
  w = rng.normal(size=(d, c)) * 0.5
  b = rng.normal(size=c) * 0.1
  model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(c, name="logits")])
  model.get_layer("logits").set_weights([w.astype(np.float32), b.astype(np.float32)])
  x = rng.uniform(0.35, 0.65, size=(12, d)).astype(np.float32)
  return model, w.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(
      np.float64), x


def _closed_form(x, w, b):
  """Distance to the nearest facet of the predicted region: min_k (z_p - z_k) / |w_p - w_k|."""
  z = x.astype(np.float64) @ w + b
  p = z.argmax(1)
  rows = np.arange(len(x))
  norm = np.linalg.norm(w.T[p][:, None, :] - w.T[None], axis=-1)
  d = (z[rows, p][:, None] - z) / np.where(norm > 0, norm, 1)
  d[rows, p] = np.inf
  return d.min(1)


def test_linear_closest_flip_points_match_the_closed_form(softmax_regression):
  model, w, b, x = softmax_regression
  ref = _closed_form(x, w, b)
  lin = boundary.linear_flip_points(x, w, b)
  np.testing.assert_allclose(lin.closest, ref, rtol=1e-10, atol=1e-12)
  assert np.all(lin.lower_bound <= lin.distance + 1e-12)
  # The closest point ties the predicted class with `nearest`, and it is in the box here.
  z = lin.point @ w + b
  rows = np.arange(len(x))
  np.testing.assert_allclose(z[rows, lin.predicted], z[rows, lin.nearest], atol=1e-9)
  assert np.all(z.max(1) <= z[rows, lin.predicted] + 1e-9)
  assert lin.point.min() >= 0 and lin.point.max() <= 1
  # Input space: the iterative search from x matches within 1e-4 (float32 model).
  inp = boundary.input_flip_points(model, x, max_iter=2)
  assert inp.found.all()
  np.testing.assert_allclose(inp.distance, ref, atol=1e-4)
  assert np.all(inp.gap < 1e-3)


def test_linear_tie_points_where_other_classes_bind_are_certified(softmax_regression):
  """Pairs whose tie projection is beaten by a third class: the QP path; compared with SLSQP."""
  _, w, b, x = softmax_regression
  lin = boundary.linear_flip_points(x, w, b)
  hard = np.argwhere(~lin.closed_form & np.isfinite(lin.distance) & (lin.distance > 0))
  assert len(hard) >= 3  # The fixture has such pairs.
  for i, j in hard[:4]:
    f, p = x[i].astype(np.float64), lin.predicted[i]
    cons = [{"type": "eq", "fun": lambda y, j=j: (w[:, p] - w[:, j]) @ y + b[p] - b[j]}]
    cons += [{"type": "ineq", "fun": lambda y, k=k: (w[:, p] - w[:, k]) @ y + b[p] - b[k]}
             for k in range(w.shape[1]) if k not in (p, j)]
    ref = optimize.minimize(lambda y, f=f: 0.5 * np.sum((y - f) ** 2), f, method="SLSQP",
                            jac=lambda y, f=f: y - f, constraints=cons,
                            options={"ftol": 1e-14, "maxiter": 500})
    d_ref = np.linalg.norm(ref.x - f)
    assert lin.lower_bound[i, j] <= d_ref + 1e-7 and d_ref <= lin.distance[i, j] + 1e-7
    assert lin.distance[i, j] - lin.lower_bound[i, j] <= 1e-9 * lin.distance[i, j]
    assert lin.distance[i, j] > lin.distance[i, lin.nearest[i]]


def test_input_search_respects_the_box():
  """One class boundary x0 + x1 = 1.8 seen from (0.95, 0.5): the unconstrained projection leaves
  the box (x0 > 1); the closest point in [0, 1]^2 is (1, 0.8), at distance sqrt(0.05^2+0.3^2)."""
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="logits")])
  model.get_layer("logits").set_weights([np.array([[0, 1], [0, 1]], np.float32),
                                         np.array([0, -1.8], np.float32)])
  x = np.array([[0.95, 0.5]], np.float32)
  inp = boundary.input_flip_points(model, x, max_iter=2)
  np.testing.assert_allclose(inp.point[0], [1.0, 0.8], atol=1e-5)
  np.testing.assert_allclose(inp.distance[0], np.hypot(0.05, 0.3), atol=1e-5)


def _simplex(d, k, shift):
  a = np.zeros((k, d))
  a[:, :k] = np.eye(k)
  a[:, -1] = shift
  return a


def test_two_simplices_at_a_known_distance():
  a, b = _simplex(8, 5, 0.0), _simplex(8, 5, 3.0)
  r = class_hulls.hull_pair_distance(a, b)
  assert r.verdict == "disjoint"
  assert r.lower_bound <= 3.0 <= r.upper_bound
  assert r.upper_bound - r.lower_bound <= 1e-4 * 3.0
  # Also shifted by 0.1 (1, 1, 1, 1, 1), orthogonal to the simplex's plane sum = 1 directions:
  # the differences e_i - e_j sum to 0, so the closest pair is i = j at |(0.1 1_5, 2)|.
  b2 = _simplex(8, 5, 2.0)
  b2[:, :5] += 0.1
  r2 = class_hulls.hull_pair_distance(a, b2)
  assert r2.lower_bound <= np.sqrt(4.05) <= r2.upper_bound <= np.sqrt(4.05) * (1 + 1e-4)


def test_random_hull_pair_matches_the_minkowski_difference():
  """The distance between conv(A) and conv(B) is the distance from 0 to conv(A - B)."""
  rng = np.random.default_rng(1)
  a = rng.normal(size=(25, 6))
  b = rng.normal(size=(30, 6)) + np.r_[5.0, np.zeros(5)]
  r = class_hulls.hull_pair_distance(a, b, atoms=4)
  ref = project_onto_hull((a[:, None] - b[None]).reshape(-1, 6), np.zeros((1, 6)),
                          dtype="float64", rel_tol=1e-6)
  assert r.verdict == "disjoint" and r.passes > 1
  assert r.lower_bound <= ref.upper_bound[0] + 1e-9
  assert ref.lower_bound[0] <= r.upper_bound + 1e-9
  np.testing.assert_allclose(r.upper_bound, ref.upper_bound[0], rtol=1e-4)
  np.testing.assert_allclose([r.alpha.sum(), r.beta.sum()], 1.0)
  np.testing.assert_allclose(np.linalg.norm(r.alpha @ a[r.alpha_support]
                                            - r.beta @ b[r.beta_support]), r.upper_bound)


def test_overlapping_and_identical_hulls_intersect():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(40, 5))
  b = rng.normal(size=(40, 5)) + 0.2  # Overlapping clouds.
  for other in (b, a):
    r = class_hulls.hull_pair_distance(a, other)
    assert r.verdict == "intersect" and r.lower_bound == 0.0
    assert r.upper_bound <= 1e-6 * np.linalg.norm(np.r_[a, other] - np.r_[a, other].mean(0),
                                                  axis=1).max()
  m = class_hulls.class_hull_distances(np.r_[a, b, a + 10.0],
                                       np.repeat([0, 1, 2], 40))
  np.testing.assert_array_equal(np.diag(m.upper_bound), 0.0)
  np.testing.assert_array_equal(m.upper_bound, m.upper_bound.T)
  assert m.verdict[0, 1] == "intersect" and m.verdict[0, 2] == "disjoint"
  assert m.as_dict()["disjoint_pairs"] == 2


def test_scope_on_a_box():
  """Training triangle (0,0), (1,0), (0,1): its box is [0, 1]^2. (0.2, 0.2) is inside the hull,
  (0.9, 0.9) outside the hull but inside the box, (1.5, 0.2) outside the box."""
  train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  q = np.array([[0.2, 0.2], [0.9, 0.9], [1.5, 0.2]])
  res = project_onto_hull(train, q, dtype="float64")
  s = scope_lib.scope(train, q, res.outside, res.projection)
  np.testing.assert_array_equal(s.category, [0, 1, 2])
  np.testing.assert_array_equal(s.coordinates_outside, [0, 0, 1])
  assert s.fractions() == {name: pytest.approx(1 / 3) for name in scope_lib.CATEGORIES}
  # Residuals of the two outside queries: (0.4, 0.4) and (0.5, 0.2) (projection (1, 0)).
  np.testing.assert_allclose(s.mean_abs_residual, [0.45, 0.3], atol=1e-6)
  # Principal directions (1, -1)/sqrt2 and (1, 1)/sqrt2 (ranges [-1/sqrt2, 1/sqrt2] and
  # [-1/(3 sqrt2), 2/(3 sqrt2)] about the mean): (0.9, 0.9) leaves the second range.
  np.testing.assert_array_equal(s.category_pca, [0, 2, 2])


def test_morphing_between_training_points_stays_inside(softmax_regression):
  model, _, _, _ = softmax_regression
  rng = np.random.default_rng(3)
  train = rng.uniform(0, 1, size=(60, 20))
  m = morph_lib.morph(model, train[:4], train[4:8], train, steps=5)
  assert m.inside.all() and np.all(m.hull_distance <= 1e-6)
  assert m.labels.shape == (4, 5) and np.array_equal(m.label_changes_inside, m.label_changes)
  # Beyond the hull: far segment ends are certified outside and the distance grows.
  far = morph_lib.morph(model, train[:2] + 3.0, train[2:4] + 3.0, train, steps=3)
  assert not far.inside.any() and np.all(far.hull_lower > 0)
  assert not far.label_changes_inside.any()
  pairs = morph_lib.pairs(np.repeat([0, 1], 5), 4, same=False)
  assert len(pairs) == 4 and np.all((pairs[:, 0] < 5) != (pairs[:, 1] < 5))


def test_ambiguity():
  gap = morph_lib.top_two_gap(np.array([[3.0, 1.0, 0.5], [1.0, 1.05, -2.0], [0.0, 0.0, 0.0]]))
  np.testing.assert_allclose(gap, [2.0, 0.05, 0.0])
  assert morph_lib.ambiguous_fraction(gap, 0.1) == pytest.approx(2 / 3)
  assert morph_lib.ambiguous_fraction(np.array([np.nan]), 0.1) is None
