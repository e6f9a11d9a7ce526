"""Analyses on constructed cases: a ray through a known linear boundary, class hulls known to lie
in (or out of) their regions, support class mixes, perturbations against hull distances."""

import keras
import numpy as np
import pytest

from tfhull import analysis
from tfhull import hull


def _threshold_model():
  """Logits (0, 10 x0 - 5): class 1 iff x0 > 0.5, a known linear boundary."""
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="logits")])
  model.get_layer("logits").set_weights([np.array([[0.0, 10.0], [0.0, 0.0]], np.float32),
                                         np.array([0.0, -5.0], np.float32)])
  return model


def test_ray_crossings_through_a_known_boundary():
  model = _threshold_model()
  p = np.array([[0.2, 0.3], [0.6, 0.3], [0.45, 0.3], [0.1, 0.9]], np.float32)
  x = np.array([[0.4, 0.3], [0.3, 0.3], [0.4, 0.3], [0.2, 0.9]], np.float32)
  # Along x_t = p + t (x - p), x0 = 0.5 at t = 1.5, 1/3, -1 and 4: beyond the sample, between
  # hull and sample, behind the hull boundary, none within [-2, 3].
  scan = analysis.ray_scan(model, x, p, t_min=-2.0, t_max=3.0, num=501)
  step = scan.t[1] - scan.t[0]
  np.testing.assert_allclose(scan.crossing[:3], [1.5, 1 / 3, -1.0], atol=step + 1e-6)
  assert np.isnan(scan.crossing[3])
  np.testing.assert_array_equal(scan.category, [2, 1, 0, 3])
  assert scan.fractions() == {name: 0.25 for name in analysis.RAY_CATEGORIES}
  # The margin of the sample's class is |10 x0 - 5|, zero on the boundary.
  at_sample = np.argmin(np.abs(scan.t - 1.0))
  np.testing.assert_allclose(scan.margin[:, at_sample], np.abs(10 * x[:, 0] - 5), atol=1e-4)


def test_linear_head_class_hulls_and_boundary_distances():
  w = np.array([[1.0, -1.0], [0.0, 0.0]])  # Class 0 iff f0 > 0: regions are half-planes.
  b = np.zeros(2)
  rng = np.random.default_rng(0)
  f0 = np.c_[rng.uniform(0.2, 1, 20), rng.normal(size=20)]
  f1 = np.c_[rng.uniform(-1, -0.2, 20), rng.normal(size=20)]
  train = np.r_[f0, f1]
  labels = np.r_[np.zeros(20, int), np.ones(20, int)]
  test = np.array([[0.3, 5.0], [-0.7, 1.0]])
  stats = analysis.linear_head(train, labels, test, w, b)
  # min_f (w_c - w_k).f over each class hull = 2 x the smallest |f0| of that class.
  np.testing.assert_allclose(stats.class_min_margin, [2 * f0[:, 0].min(), 2 * -f1[:, 0].max()])
  assert np.all(stats.class_min_margin > 0)  # Both class hulls inside their own regions.
  np.testing.assert_allclose(stats.boundary_distance, [0.3, 0.7])
  np.testing.assert_array_equal(stats.predicted, [0, 1])
  # A class-1 training feature on the wrong side: its class hull now crosses the boundary.
  bad = analysis.linear_head(np.r_[train, [[0.1, 0.0]]], np.r_[labels, 1], test, w, b)
  assert bad.class_min_margin[1] == pytest.approx(-0.2)


def test_own_class_weight_of_a_projection():
  support = np.array([[0, 1, -1], [2, -1, -1]])
  weights = np.array([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]])
  train_labels = np.array([3, 5, 5])
  np.testing.assert_allclose(
      analysis.own_class_weight(support, weights, train_labels, np.array([5, 3])), [0.75, 0.0])


def test_hull_stats_match_the_solver_output():
  rng = np.random.default_rng(1)
  points = rng.normal(size=(200, 5)).astype(np.float32)
  queries = np.r_[rng.normal(size=(10, 5)) * 3, points[:5] * 0.1].astype(np.float32)
  res = hull.project_onto_hull(points, queries)
  arrays = {k: getattr(res, k) for k in ("distance", "nearest_distance", "outside", "inside",
                                         "nnz", "support", "weights")}
  arrays["query_labels"] = np.zeros(15, int)
  stats = analysis.hull_stats(arrays, np.zeros(200, int))
  assert stats.queries == 15
  assert stats.fraction_outside == pytest.approx(np.mean(res.outside))
  assert stats.fraction_inside >= 5 / 15  # Shrunk training points lie inside.
  assert stats.own_class_weight["median"] == pytest.approx(1.0)  # One class: all weight is own.
  ratio = res.distance / res.nearest_distance
  assert stats.ratio["median"] == pytest.approx(np.median(ratio))
  assert np.all(ratio <= 1 + 1e-6)  # The hull is never farther than the nearest point.


def test_perturbation_vs_hull_joins_by_source_index():
  records = {"attack": np.array(["pgd", "min_pgd", "min_pgd", "min_pgd"]),
             "norm": np.array(["2", "2", "2", "inf"]),
             "success": np.array([True, True, False, True]),
             "source_index": np.array([0, 2, 1, 2]),
             "l2": np.array([9.0, 0.5, 0.1, 0.7]), "linf": np.array([9.0, 0.2, 0.1, 0.1])}
  d_hull, d_nn = np.array([1.0, 2.0, 0.4]), np.array([3.0, 3.0, 0.6])
  out = analysis.perturbation_vs_hull(records, d_hull, d_nn, "2")
  np.testing.assert_array_equal(out["source"], [2])
  np.testing.assert_allclose(out["perturbation"], [0.5])
  np.testing.assert_allclose(out["d_hull"], [0.4])
  assert out["fraction_below_d_hull"] == 0.0 and out["fraction_below_d_nn"] == 1.0
  inf = analysis.perturbation_vs_hull(records, d_hull, d_nn, "inf")
  np.testing.assert_allclose(inf["perturbation"], [0.7])      # L2 length, comparable to d_hull.
  np.testing.assert_allclose(inf["perturbation_norm"], [0.1])  # L-inf size.


def test_ray_scan_in_chunks_equals_one_pass():
  model = _threshold_model()
  rng = np.random.default_rng(3)
  x, p = rng.uniform(0, 1, (37, 2)).astype(np.float32), rng.uniform(0, 1, (37, 2)).astype(np.float32)
  whole = analysis.ray_scan(model, x, p, num=41)
  chunked = analysis.ray_scan(model, x, p, num=41, max_points=2 * 41 * 5)  # 5 rays per chunk.
  np.testing.assert_array_equal(whole.labels, chunked.labels)
  np.testing.assert_allclose(whole.margin, chunked.margin, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(whole.category, chunked.category)


def test_ray_examples_prefer_rays_that_cross():
  from tfhull.analysis.study import ray_examples  # pylint: disable=import-outside-toplevel
  category = np.array([3, 3, 3, 1, 3, 2, 1, 3, 0, 3])
  # Round-robin over the crossing categories, then rays without a crossing to fill up.
  assert ray_examples(category, 4).tolist() == [3, 5, 6, 8]
  assert ray_examples(category, 6).tolist() == [0, 1, 3, 5, 6, 8]
  assert ray_examples(np.full(5, 3), 3).tolist() == [0, 1, 2]
