"""The hull as an error predictor: AUROCs against sklearn, perfect separation, the k-NN baseline."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from tfhull import analysis
from tfhull.analysis import error_prediction


def _case(seed=0, q=300, n=400, f=16, c=5):
  rng = np.random.default_rng(seed)
  correct = rng.random(q) > 0.2
  # Errors sit a little farther from the hull, with noise: an informative, imperfect score.
  d_hull = rng.gamma(2.0, 1.0, q) + 0.8 * ~correct
  d_nn = d_hull + rng.gamma(2.0, 1.0, q)
  own = rng.random(q) + 0.3 * ~correct
  other = rng.random(q)
  logits = rng.normal(size=(q, c)) * np.where(correct, 3.0, 1.0)[:, None]
  return dict(correct=correct, d_hull=d_hull, d_nn=d_nn, own=own, other=other, logits=logits,
              train=rng.normal(size=(n, f)), test=rng.normal(size=(q, f)))


def test_aurocs_equal_sklearn_on_a_constructed_case():
  a = _case()
  res = analysis.predict_errors(
      a["correct"], hull={"pixel": {"d_hull": a["d_hull"], "d_nn": a["d_nn"],
                                    "own_class_distance": a["own"],
                                    "nearest_other_class_distance": a["other"]}},
      logits=a["logits"], train_features=a["train"], test_features=a["test"], k=7, resamples=100)
  err = ~a["correct"]
  p = np.exp(a["logits"] - a["logits"].max(1, keepdims=True))
  msp = (p / p.sum(1, keepdims=True)).max(1)
  unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # pylint: disable=unnecessary-lambda-assignment
  knn = NearestNeighbors(n_neighbors=7).fit(unit(a["train"])).kneighbors(unit(a["test"]))[0][:, -1]
  want = {"pixel/d_hull": roc_auc_score(err, a["d_hull"]),
          "pixel/d_hull_over_d_nn": roc_auc_score(err, a["d_hull"] / a["d_nn"]),
          "pixel/class_hull_margin": roc_auc_score(err, a["own"] - a["other"]),
          "max_softmax": roc_auc_score(err, -msp), "knn": roc_auc_score(err, knn)}
  assert set(res.auroc) == set(want)
  for name, value in want.items():
    assert res.auroc[name] == pytest.approx(value, abs=1e-12), name
  np.testing.assert_allclose(res.scores["knn"], knn, rtol=1e-6, atol=1e-9)
  assert res.auroc["pixel/d_hull"] > 0.6  # The constructed signal is found.
  for name, value in res.auroc.items():  # Bootstrap intervals hold their estimate.
    low, high = res.interval[name]
    assert low <= value <= high and high - low < 0.3, (name, low, value, high)
  assert res.k == 7 and res.errors == int(err.sum()) and res.samples == 300
  d = res.as_dict()
  assert {r["score"] for r in d["rows"]} == {"d_hull", "d_hull_over_d_nn", "class_hull_margin",
                                            "max_softmax", "knn"}
  assert "scores" not in d


def test_a_score_that_separates_perfectly_has_auroc_one_and_reversed_zero():
  correct = np.array([True] * 8 + [False] * 4)
  d = np.where(correct, np.linspace(0.1, 0.5, 12), np.linspace(1.0, 2.0, 12))
  res = analysis.predict_errors(correct, hull={"s": {"d_hull": d}}, resamples=20)
  assert res.auroc == {"s/d_hull": 1.0} and res.interval == {"s/d_hull": [1.0, 1.0]}
  reverse = analysis.predict_errors(correct, hull={"s": {"d_hull": -d}}, resamples=0)
  assert reverse.auroc["s/d_hull"] == 0.0
  # Undefined with a single class; non-finite scores are left out.
  single = analysis.predict_errors(np.ones(5, bool), hull={"s": {"d_hull": np.arange(5.0)}})
  assert single.auroc["s/d_hull"] is None and single.interval["s/d_hull"] is None
  d_nan = d.copy()
  d_nan[0] = np.nan
  partial = analysis.predict_errors(correct, hull={"s": {"d_hull": d_nan}}, resamples=0)
  assert partial.auroc["s/d_hull"] == 1.0


def test_default_k_follows_sun_et_al_and_scales_down():
  assert [analysis.default_k(n) for n in (50, 1347, 5000, 50000, 1281167)] == [1, 13, 50, 50, 50]
  with pytest.raises(ValueError, match="rows"):
    analysis.predict_errors(np.ones(3, bool), hull={"s": {"d_hull": np.zeros(4)}})
  # k larger than the training set: the farthest point.
  tr, te = np.eye(3), np.array([[1.0, 0.0, 0.0]])
  np.testing.assert_allclose(error_prediction.knn_distance(tr, te, 10), [np.sqrt(2)])


def test_summary_rows_show_each_auroc_with_its_interval():
  from tfhull.report import study  # pylint: disable=import-outside-toplevel
  ep = {"samples": 100, "errors": 4, "k": 5, "rows": [
      {"space": "pixel", "score": "d_hull", "auroc": 0.8125, "interval": [0.7, 0.9]},
      {"space": "-", "score": "knn", "auroc": 0.625, "interval": [0.5, 0.75]},
      {"space": "pixel", "score": "d_hull_over_d_nn", "auroc": None, "interval": None}]}
  rows = study._error_rows(ep, {"pixel": 64})  # pylint: disable=protected-access
  assert [r[0] for r in rows] == ["Error prediction, pixels (64-d)", "Error prediction, baselines"]
  assert rows[0][1] == "d_hull 0.81 (0.7-0.9)" and "k-NN feature distance 0.62" in rows[1][1]
  assert "4 misclassified of 100" in rows[0][2] and "k = 5" in rows[1][2]
  assert study._error_rows({**ep, "errors": 0}, None) == []  # pylint: disable=protected-access
