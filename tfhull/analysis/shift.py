"""The hull as a detector of shifted inputs: AUROC of hull scores against the OOD baselines for
the in-distribution test set (negatives) vs a shifted set (positives).

  sets = shifted_sets(ds, ["shuffled_pixels"], held_out=(x_other, y_other), samples=200, seed=0)
  res = detect_shift(test, shifted, logits_test, logits_shifted, train_features=f_train,
                     test_features=f_test, shifted_features=f_shift)
  res.auroc["pixel/d_hull"], res.auroc["knn"], res.auroc["max_softmax"]

Shifted sets: the test images under the corruptions of `tfhull.data.transforms` (their inputs
permuted or replaced by noise), and the test images of classes the model was not trained on
(`--classes` keeps a subset: the rest are the held-out classes). Scores as in
`tfhull.analysis.error_prediction` (larger = more likely shifted), except that the class-hull
margin uses the model's *predicted* class (a shifted input has no true one): distance to the
predicted class's hull minus the distance to the nearest other class's hull.
"""

from typing import Mapping, Optional, Sequence

import numpy as np

from tfhull.analysis.error_prediction import ErrorPrediction
from tfhull.analysis.error_prediction import predict_errors


def shifted_sets(x_test: np.ndarray, corruptions: Sequence[str], *,
                 held_out: Optional[np.ndarray] = None, samples: int = 200,
                 seed: int = 0) -> dict:
  """{name: (m, ...) inputs}: `samples` seeded test inputs under each corruption (named by it),
  and up to `samples` held-out-class inputs ("held_out_classes")."""
  from tfhull.data import transforms  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng([seed, 7])
  pick = lambda n: np.sort(rng.choice(n, min(samples, n), replace=False))  # pylint: disable=unnecessary-lambda-assignment
  out = {}
  for c in corruptions:
    if c == "none":
      continue
    x = x_test[pick(len(x_test))]
    out[c] = transforms.corrupt_inputs(x, c, transforms.seeded_rng(seed, 11))
  if held_out is not None and len(held_out):
    out["held_out_classes"] = np.asarray(held_out[pick(len(held_out))], np.float32)
  return out


def margin_by_prediction(class_distance: np.ndarray, predicted: np.ndarray) -> np.ndarray:
  """(q,) distance to the predicted class's hull minus the nearest other class's hull, from the
  (q, classes) distances to every class hull."""
  d = np.asarray(class_distance, np.float64)
  predicted = np.asarray(predicted, int)
  own = d[np.arange(len(d)), predicted]
  other = d.copy()
  other[np.arange(len(d)), predicted] = np.inf
  return own - other.min(1)


def detect_shift(test: Mapping[str, Mapping], shifted: Mapping[str, Mapping],
                 logits_test: np.ndarray, logits_shifted: np.ndarray, *,
                 train_features: Optional[np.ndarray] = None,
                 test_features: Optional[np.ndarray] = None,
                 shifted_features: Optional[np.ndarray] = None,
                 resamples: int = 200) -> ErrorPrediction:
  """AUROC of each score for shifted (positive) vs in-distribution test inputs (negative).

  Args:
    test, shifted: space -> {"d_hull", "d_nn", optional "class_margin"} arrays of the test set
      (q,) and of the shifted set (m,); spaces in both are scored.
    logits_test, logits_shifted: (q, c), (m, c) logits (max-softmax baseline).
    *_features: penultimate features for the k-NN baseline (all three or none).
  Returns:
    `ErrorPrediction` whose "errors" are the shifted inputs.
  """
  hull = {}
  for space in test:
    if space not in shifted:
      continue
    a, b = test[space], shifted[space]
    hull[space] = {"d_hull": np.r_[a["d_hull"], b["d_hull"]],
                   "d_nn": np.r_[a["d_nn"], b["d_nn"]]}
    if a.get("class_margin") is not None and b.get("class_margin") is not None:
      # own - other with other = 0 gives the margin itself (predict_errors' definition).
      hull[space]["own_class_distance"] = np.r_[a["class_margin"], b["class_margin"]]
      hull[space]["nearest_other_class_distance"] = np.zeros(
          len(a["class_margin"]) + len(b["class_margin"]))
  q, m = len(logits_test), len(logits_shifted)
  feats = {}
  if train_features is not None and test_features is not None and shifted_features is not None:
    feats = {"train_features": train_features,
             "test_features": np.concatenate([test_features, shifted_features])}
  in_dist = np.r_[np.ones(q, bool), np.zeros(m, bool)]
  return predict_errors(in_dist, hull=hull, logits=np.concatenate([logits_test, logits_shifted]),
                        resamples=resamples, **feats)


def held_out_inputs(data_cfg) -> Optional[np.ndarray]:
  """Test inputs of the source's classes that `data_cfg.classes` leaves out (None: all kept)."""
  if not data_cfg.classes:
    return None
  import tfhull.data  # pylint: disable=import-outside-toplevel
  full = tfhull.data.load_source(data_cfg.dataset, data_dir=data_cfg.data_dir, download=False,
                                 seed=data_cfg.seed)
  ids = tfhull.data.resolve_classes(full.class_names, list(data_cfg.classes))
  other = ~np.isin(full.y_test, ids)
  return full.x_test[other] if other.any() else None


def shift_study(ds, model, measured: Mapping, train_labels: np.ndarray, feature_space,
                sets: Mapping[str, np.ndarray], solver: Mapping, *, strategy=None) -> dict:
  """Per shifted set: the hull distances of its inputs in the pixel and penultimate-feature
  spaces (the spaces whose test split was measured), and `detect_shift`'s AUROCs.

  Returns {"sets": {name: ErrorPrediction.as_dict() + "samples_shifted"}, "spaces": [...]}."""
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.hull import classes as hull_classes  # pylint: disable=import-outside-toplevel
  from tfhull.hull import solver as hull_solver  # pylint: disable=import-outside-toplevel
  logits_test = models.predict(model, ds.x_test)
  spaces = {}
  if ("pixel", "test") in measured:
    spaces["pixel"] = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float32)
  if ("layer:features", "test") in measured and feature_space is not None:
    spaces["layer:features"] = feature_space.splits["train"]
  test = {}
  for space in spaces:
    a = measured[(space, "test")]
    test[space] = {"d_hull": a["distance"], "d_nn": a["nearest_distance"]}
    if a.get("class_upper_bound") is not None:
      test[space]["class_margin"] = margin_by_prediction(a["class_upper_bound"],
                                                         logits_test.argmax(1))
  out = {"spaces": list(spaces), "sets": {}}
  for name, x in sets.items():
    logits = models.predict(model, x)
    pred = logits.argmax(1)
    shifted, feats = {}, None
    for space, points in spaces.items():
      rep = representations.parse_representation(space)
      q = representations.compute(rep, ds, model, extra={"shift": x}, only_extra=True,
                                  strategy=strategy).splits["shift"]
      if space == "layer:features":
        feats = q
      res = hull_solver.project_onto_hull(points, q, strategy=strategy, **solver)
      shifted[space] = {"d_hull": res.distance, "d_nn": res.nearest_distance}
      if "class_margin" in test.get(space, {}):
        pc = hull_classes.per_class_distances(points, train_labels, q, pred,
                                              num_classes=ds.num_classes, strategy=strategy,
                                              **solver)
        shifted[space]["class_margin"] = margin_by_prediction(pc.upper_bound, pred)
    res = detect_shift(
        test, shifted, logits_test, logits,
        train_features=spaces.get("layer:features"),
        test_features=feature_space.splits["test"] if feature_space is not None else None,
        shifted_features=feats)
    d = res.as_dict()
    d["samples_shifted"] = d.pop("errors")
    d["samples_in_distribution"] = d["samples"] - d["samples_shifted"]
    d.pop("error_rate", None)
    d["score_orientation"] = "larger = more likely shifted; AUROC 0.5 = chance"
    out["sets"][name] = d
  return out
