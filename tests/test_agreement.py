"""Agreement of models inside vs outside the hull (tfhull.analysis.agreement) on constructed cases."""

import numpy as np
import pytest

from tfhull.analysis import agreement as ag


def _box_models(x):
  """Two 'models' on 2-D points: identical inside the unit square, different outside it."""
  x = np.asarray(x).reshape(len(x), -1)
  a = (x[:, 0] > 0.5).astype(int)
  inside = np.all((x >= 0) & (x <= 1), axis=1)
  b = np.where(inside, a, 1 - a)
  return np.stack([a, b])


@pytest.fixture(scope="module")
def train():
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (60, 2)).astype(np.float32)
  return x, (x[:, 0] > 0.5).astype(int) + 2 * (x[:, 1] > 0.5)


def test_identical_inside_different_outside(train):
  x, y = train
  inside = []
  for same in (True, False):
    mix = ag.mixtures(x, y, 300, same_class=same, seed=1)
    r = ag.agreement(_box_models(mix.points), "mix")
    assert r.disagreement.estimate == 0 and r.disagreement.high == 0 and r.pairwise.estimate == 0
    inside.append(r)
  q = x[:20]
  anchor = np.full_like(q, 0.5)  # Inside the square; t = 3 is outside for all but centre points.
  rays = ag.ray_points(q, anchor, [0.0, 1.0, 3.0])
  assert rays.shape == (3, 20, 2)
  np.testing.assert_allclose(rays[0], anchor)
  np.testing.assert_allclose(rays[1], q, atol=1e-6)
  r0, r1, r3 = (ag.agreement(_box_models(p), f"t={t}") for p, t in zip(rays, (0, 1, 3)))
  assert r0.disagreement.estimate == 0 and r1.disagreement.estimate == 0
  out = np.any((rays[2] < 0) | (rays[2] > 1), axis=1)
  assert out.sum() > 10
  assert r3.disagreement.estimate == pytest.approx(out.mean())  # Exactly the points outside.
  assert 0 < r3.disagreement.low <= r3.disagreement.estimate <= r3.disagreement.high
  text = ag.headline(inside, [r3])
  assert "agree inside the training hull and disagree outside" in text, text
  assert "does not decide" in ag.headline([r3], [r1]) and "overlap" in ag.headline([r1], [r0])


def test_mixtures_are_convex_combinations_inside_the_hull(train):
  x, y = train
  same = ag.mixtures(x, y, 40, same_class=True, parts=3, seed=2)
  mixed = ag.mixtures(x, y, 40, same_class=False, parts=3, seed=2)
  for m in (same, mixed):
    assert np.all(m.weights >= 0)
    np.testing.assert_allclose(m.weights.sum(1), 1)
    np.testing.assert_allclose(m.points, np.einsum("mp,mpd->md", m.weights, x[m.index]),
                               atol=1e-6)
    assert np.all([len(set(r)) == 3 for r in m.index])  # Distinct training points.
  assert np.all(y[same.index] == y[same.index[:, :1]])
  assert np.all([len(set(r)) == 3 for r in y[mixed.index]])  # Three distinct classes.
  np.testing.assert_array_equal(ag.mixtures(x, y, 40, same_class=True, seed=2).index, same.index)
  # The hull solver agrees: each mixture is inside the hull of its training points.
  from tfhull.hull import project_onto_hull  # pylint: disable=import-outside-toplevel
  from tfhull.hull import solver  # pylint: disable=import-outside-toplevel
  res = project_onto_hull(x, np.concatenate([same.points, mixed.points]))
  assert np.all(res.verdict == solver.INSIDE)


def test_pairwise_and_disagreement_exact():
  labels = np.array([[0, 0, 1, 2], [0, 1, 1, 0], [0, 1, 1, 1]])
  np.testing.assert_array_equal(ag.disagrees(labels), [False, True, False, True])
  np.testing.assert_allclose(ag.pairwise(labels), [0, 2 / 3, 0, 1])
  r = ag.agreement(labels, "r")
  assert r.disagreement.estimate == 0.5 and r.pairwise.estimate == pytest.approx(5 / 12)
  assert (r.points, r.models) == (4, 3)
  with pytest.raises(ValueError, match="k >= 2"):
    ag.agreement(labels[:1], "one model")


def test_interval_sanity():
  rng = np.random.default_rng(3)
  a = rng.integers(0, 3, 2000)
  b = np.where(rng.uniform(size=2000) < 0.2, (a + 1) % 3, a)  # 20% disagreement.
  r = ag.agreement(np.stack([a, b]), "r", resamples=500)
  iv = r.disagreement
  assert iv.low < iv.estimate < iv.high and iv.low < 0.2 < iv.high
  assert 0.01 < iv.high - iv.low < 0.06   # ~ 4 sqrt(0.16 / 2000) = 0.036.
  assert r.pairwise.estimate == iv.estimate  # Two models: the same quantity.


def test_ratio_bins():
  b = ag.ratio_bins([0.1, 0.5, 0.55, 0.9, 1.0, 1.2, np.nan], [0.5, 0.6, 1.0])
  np.testing.assert_array_equal(b, [-1, 0, 0, 1, 1, -1, -1])
  with pytest.raises(ValueError, match="increasing"):
    ag.ratio_bins([0.5], [1.0, 0.5])


def test_pipeline_measure_regions_are_consistent(train):
  """pipelines.agreement.measure on two small untrained MLPs: the ray at t = 1 is the test set,
  the d_hull/d_NN bins partition the test points within the edges."""
  import types  # pylint: disable=import-outside-toplevel
  from pipelines import agreement as pipeline  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  x, y = train
  rng = np.random.default_rng(4)
  x_test = rng.uniform(-0.5, 1.5, (30, 2)).astype(np.float32)
  ds = types.SimpleNamespace(x_train=x, y_train=y, x_test=x_test, y_test=np.zeros(30, int))
  proj = np.clip(x_test, 0, 1)  # Stands in for the hull projection (measure only reads these).
  hull = {"distance": np.linalg.norm(x_test - proj, axis=1), "projection": proj,
          "nearest_distance": np.linalg.norm(x_test[:, None] - x[None], axis=2).min(1)}
  nets = [models.build("mlp:width=16,depth=1", (2,), 4, seed=s) for s in (0, 1)]
  opts = {"mixtures": 50, "parts": 3, "ratio_bins": [0.0, 0.5, 1.0], "ray_t": [0.0, 1.0, 2.0]}
  out = pipeline.measure(ds, nets, hull, opts)
  assert [a.region for a in out["inside"]] == ["training images", "same-class mixtures",
                                                "mixed-class mixtures"]
  assert [a.points for a in out["inside"]] == [60, 50, 50]
  allt = out["tests"][0]
  assert allt.points == 30 and out["rays"][1].points == 30
  assert out["rays"][1].disagreement.estimate == allt.disagreement.estimate
  ratio = hull["distance"] / hull["nearest_distance"]
  assert sum(a.points for a in out["tests"][1:]) == np.sum((ratio >= 0) & (ratio <= 1))
  assert len(out["train_accuracy"]) == 2 and len(out["test_accuracy"]) == 2
