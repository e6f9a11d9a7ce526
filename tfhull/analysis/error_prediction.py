"""The hull as a predictor of the model's errors: AUROC of hull scores against OOD baselines.

  res = predict_errors(correct, hull={"layer:features": {"d_hull": d, "d_nn": nn}},
                       logits=logits, train_features=f_train, test_features=f_test)
  res.auroc["layer:features/d_hull"], res.auroc["knn"], res.auroc["max_softmax"]

Every score is oriented as in the OOD literature (pytorch-ood): larger means "more likely an
error", and AUROC is the probability that a misclassified sample scores above a correctly
classified one (`sklearn.metrics.roc_auc_score`, errors as the positive class; 0.5 = chance).

Scores per space: d_hull; d_hull / d_NN; the class-hull margin d_own - d_other (distance to the
hull of the sample's *true* class minus the distance to the nearest other class's hull, as the
hull step measures it: a diagnostic that uses the label, not a deployable predictor).
Baselines: max-softmax (Hendrycks & Gimpel 2017; score 1 - max p) and the k-th nearest-neighbour
distance between L2-normalised features (Sun et al. 2022, "Out-of-distribution detection with
deep nearest neighbors"; they use k = 50 on CIFAR-10's 50,000 training points, i.e. k/n = 0.1%).
`default_k` keeps their k for large sets and scales it down for small ones:
k = clip(n_train // 100, 1, 50) (digits' 1,347 training points: k = 13).
"""

import dataclasses
from typing import Mapping, Optional

import numpy as np


def default_k(n_train: int) -> int:
  """k of the k-NN baseline: Sun et al.'s 50 for n >= 5,000, n // 100 (at least 1) below."""
  return int(min(50, max(1, n_train // 100)))


def knn_distance(train: np.ndarray, test: np.ndarray, k: int, *, chunk: int = 256) -> np.ndarray:
  """(q,) distance from each L2-normalised test feature to its k-th nearest normalised training
  feature (Sun et al. 2022), computed in chunks of `chunk` queries."""
  def unit(a):
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
  tr, te = unit(train), unit(test)
  k = int(min(max(1, k), len(tr)))
  out = np.empty(len(te))
  for i in range(0, len(te), chunk):
    sq = np.maximum(2.0 - 2.0 * te[i:i + chunk] @ tr.T, 0.0)  # |a - b|^2 of unit vectors.
    out[i:i + chunk] = np.sqrt(np.partition(sq, k - 1, axis=1)[:, k - 1])
  return out


def softmax_score(logits: np.ndarray) -> np.ndarray:
  """(q,) 1 - max softmax probability (larger: less confident)."""
  z = np.asarray(logits, np.float64)
  z = z - z.max(1, keepdims=True)
  p = np.exp(z)
  return 1.0 - (p / p.sum(1, keepdims=True)).max(1)


def auroc(errors: np.ndarray, score: np.ndarray) -> Optional[float]:
  """AUROC of `score` for `errors` (bool, the positive class) over the rows where the score is
  finite; None when those rows hold only errors or only correct samples."""
  from sklearn.metrics import roc_auc_score  # pylint: disable=import-outside-toplevel
  errors = np.asarray(errors, bool)
  score = np.asarray(score, np.float64)
  ok = np.isfinite(score)
  if errors[ok].all() or not errors[ok].any():
    return None
  return float(roc_auc_score(errors[ok], score[ok]))


def auroc_interval(errors: np.ndarray, score: np.ndarray, *, resamples: int = 200,
                   seed: int = 0, level: float = 0.95) -> Optional[list]:
  """[low, high] percentile interval of the AUROC over stratified bootstrap resamples (errors and
  correct samples resampled separately, so each resample keeps both classes); None where the
  AUROC is undefined. With few errors the interval is wide: report it beside the estimate."""
  from sklearn.metrics import roc_auc_score  # pylint: disable=import-outside-toplevel
  errors = np.asarray(errors, bool)
  score = np.asarray(score, np.float64)
  ok = np.isfinite(score)
  errors, score = errors[ok], score[ok]
  pos, neg = np.flatnonzero(errors), np.flatnonzero(~errors)
  if not len(pos) or not len(neg):
    return None
  rng = np.random.default_rng(seed)
  labels = np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)]
  rows = np.concatenate([rng.choice(pos, (len(pos), resamples)),
                         rng.choice(neg, (len(neg), resamples))])   # One resample per column.
  # One call: sklearn scores each column of a multilabel problem (average=None).
  values = roc_auc_score(np.repeat(labels[:, None], resamples, 1), score[rows], average=None)
  tail = (1 - level) / 2 * 100
  return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


@dataclasses.dataclass
class ErrorPrediction:
  """AUROC of each score for misclassified (positive) vs correct test samples."""
  samples: int
  errors: int
  k: Optional[int]            # k of the k-NN baseline (None: no features given).
  auroc: dict                 # score name -> AUROC or None ("<space>/d_hull", "knn", ...).
  interval: dict              # score name -> 95% stratified-bootstrap [low, high] or None.
  scores: dict                # score name -> (q,) the score itself (for figures; not JSON).

  def as_dict(self) -> dict:
    """JSON-ready: counts, k, the AUROCs, and `rows` [{space, score, auroc}] for a table."""
    rows = []
    for name, value in self.auroc.items():
      space, _, score = name.rpartition("/")
      rows.append({"space": space or "-", "score": score, "auroc": value,
                   "interval": self.interval.get(name)})
    return {"samples": self.samples, "errors": self.errors,
            "error_rate": self.errors / self.samples if self.samples else None,
            "k": self.k, "auroc": dict(self.auroc), "interval": dict(self.interval),
            "rows": rows,
            "score_orientation": "larger = more likely an error; AUROC 0.5 = chance"}


def predict_errors(correct: np.ndarray, *, hull: Optional[Mapping[str, Mapping]] = None,
                   logits: Optional[np.ndarray] = None,
                   train_features: Optional[np.ndarray] = None,
                   test_features: Optional[np.ndarray] = None,
                   k: Optional[int] = None, resamples: int = 200) -> ErrorPrediction:
  """AUROC of hull scores and baselines for predicting which test samples the model gets wrong.

  Args:
    correct: (q,) bool, the model's prediction equals the label.
    hull: space -> arrays of that space's test split, each (q,): "d_hull", optionally "d_nn",
      "own_class_distance" and "nearest_other_class_distance".
    logits: (q, c) the model's logits (max-softmax baseline).
    train_features, test_features: (n, f), (q, f) features for the k-NN baseline.
    k: k of the k-NN baseline; None: `default_k(n)`.
    resamples: bootstrap resamples of each AUROC's 95% interval (seeded; 0: none).
  """
  correct = np.asarray(correct, bool)
  errors = ~correct
  scores = {}
  for space, a in (hull or {}).items():
    d = np.asarray(a["d_hull"], np.float64)
    scores[f"{space}/d_hull"] = d
    if a.get("d_nn") is not None:
      scores[f"{space}/d_hull_over_d_nn"] = d / np.maximum(np.asarray(a["d_nn"], np.float64),
                                                           1e-30)
    if a.get("own_class_distance") is not None and a.get("nearest_other_class_distance") \
        is not None:
      scores[f"{space}/class_hull_margin"] = (
          np.asarray(a["own_class_distance"], np.float64)
          - np.asarray(a["nearest_other_class_distance"], np.float64))
  if logits is not None:
    scores["max_softmax"] = softmax_score(logits)
  if train_features is not None and test_features is not None:
    k = default_k(len(train_features)) if k is None else int(k)
    scores["knn"] = knn_distance(train_features, test_features, k)
  else:
    k = None
  for name, s in scores.items():
    if len(s) != len(correct):
      raise ValueError(f"score {name} has {len(s)} rows, the labels {len(correct)}")
  return ErrorPrediction(samples=int(len(correct)), errors=int(errors.sum()), k=k,
                         auroc={name: auroc(errors, s) for name, s in scores.items()},
                         interval={name: auroc_interval(errors, s, resamples=resamples)
                                   if resamples else None for name, s in scores.items()},
                         scores=scores)
