"""The hull as a detector of shifted inputs (`tfhull.analysis.shift`): AUROC against sklearn,
margins by predicted class, the shifted sets."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfhull.analysis import shift


def test_detect_shift_matches_sklearn_with_shifted_as_positives():
  rng = np.random.default_rng(0)
  q, m, c = 60, 40, 3
  test = {"pixel": {"d_hull": rng.random(q), "d_nn": 1 + rng.random(q),
                    "class_margin": rng.normal(0, 1, q)}}
  shifted = {"pixel": {"d_hull": rng.random(m) + 0.3, "d_nn": 1 + rng.random(m),
                       "class_margin": rng.normal(0.5, 1, m)},
             "other": {"d_hull": rng.random(m), "d_nn": rng.random(m)}}  # Not in test: skipped.
  lt, ls = rng.normal(0, 2, (q, c)), rng.normal(0, 0.5, (m, c))
  ft, fs, ftrain = rng.normal(size=(q, 5)), rng.normal(size=(m, 5)) + 1, rng.normal(size=(30, 5))
  res = shift.detect_shift(test, shifted, lt, ls, train_features=ftrain, test_features=ft,
                           shifted_features=fs, resamples=50)
  y = np.r_[np.zeros(q), np.ones(m)]
  d = np.r_[test["pixel"]["d_hull"], shifted["pixel"]["d_hull"]]
  nn = np.r_[test["pixel"]["d_nn"], shifted["pixel"]["d_nn"]]
  assert res.samples == q + m and res.errors == m
  assert res.auroc["pixel/d_hull"] == pytest.approx(roc_auc_score(y, d))
  assert res.auroc["pixel/d_hull_over_d_nn"] == pytest.approx(roc_auc_score(y, d / nn))
  assert res.auroc["pixel/class_hull_margin"] == pytest.approx(roc_auc_score(
      y, np.r_[test["pixel"]["class_margin"], shifted["pixel"]["class_margin"]]))
  p = np.exp(np.r_[lt, ls])
  assert res.auroc["max_softmax"] == pytest.approx(roc_auc_score(y, 1 - (p / p.sum(1, keepdims=True)).max(1)))
  assert "knn" in res.auroc and not any(k.startswith("other/") for k in res.auroc)


def test_margin_by_prediction():
  d = np.array([[1.0, 3.0, 0.5], [2.0, 2.5, 4.0]])
  np.testing.assert_allclose(shift.margin_by_prediction(d, [1, 0]), [3.0 - 0.5, 2.0 - 2.5])


def test_shifted_sets_are_corrupted_test_inputs_and_held_out_classes():
  rng = np.random.default_rng(1)
  x = rng.random((30, 4, 4, 1)).astype(np.float32)
  other = rng.random((7, 4, 4, 1)).astype(np.float32)
  sets = shift.shifted_sets(x, ["none", "shuffled_pixels"], held_out=other, samples=10, seed=3)
  assert sorted(sets) == ["held_out_classes", "shuffled_pixels"]
  assert sets["shuffled_pixels"].shape == (10, 4, 4, 1) and len(sets["held_out_classes"]) == 7
  # Shuffled pixels keep each image's multiset of values.
  flat = np.sort(sets["shuffled_pixels"].reshape(10, -1), 1)
  assert any(np.allclose(flat[0], np.sort(xi.ravel())) for xi in x)
  again = shift.shifted_sets(x, ["shuffled_pixels"], samples=10, seed=3)
  np.testing.assert_array_equal(again["shuffled_pixels"], sets["shuffled_pixels"])


def test_findings_state_what_the_intervals_support():
  from tfhull.report import findings
  iv = lambda e, lo, hi, seeds=1: {"estimate": e, "low": lo, "high": hi, "seeds": seeds}  # pylint: disable=unnecessary-lambda-assignment
  intervals = {"test_fraction_outside": {"pixel": iv(1.0, 1.0, 1.0), "layer:features":
                                         iv(0.4, 0.3, 0.5)},
               "median_dhull_over_dnn": {"pixel": iv(0.6, 0.58, 0.62)},
               "test_accuracy": iv(0.97, 0.95, 0.98)}
  ep = {"auroc": {"pixel/d_hull": 0.8, "pixel/class_hull_margin": 0.99, "knn": 0.6,
                  "max_softmax": 0.85},
        "interval": {"pixel/d_hull": [0.7, 0.9], "pixel/class_hull_margin": [0.98, 1.0],
                     "knn": [0.5, 0.68], "max_softmax": [0.8, 0.9]}}
  text = findings.findings(intervals, error_prediction=ep)
  assert "supports that nearly every test point" in text and "pixels" in text.lower()
  assert "does not show that test points lie outside the hull in" in text
  assert "better than the k-NN feature distance" in text
  assert "class-hull margin" not in text  # It uses the true label: not a predictor.
  assert "does not show it beats max-softmax" in text
  assert "one trained model" in text
  weak = {"auroc": {"pixel/d_hull": 0.55}, "interval": {"pixel/d_hull": [0.45, 0.65]}}
  assert "does not show that the hull scores predict" in findings.findings(
      {"test_accuracy": iv(0.9, 0.8, 0.95, seeds=3)}, error_prediction=weak)
  assert "3 model seeds" in findings.findings({"test_accuracy": iv(0.9, 0.8, 0.95, seeds=3)})
