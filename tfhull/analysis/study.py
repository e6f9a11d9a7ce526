"""The whole study's analyses from its artifacts' arrays (what the analyze step writes)."""

from absl import logging
import numpy as np

from tfhull import models
from tfhull.analysis.adversarial import perturbation_vs_hull
from tfhull.analysis.error_prediction import predict_errors
from tfhull.analysis.geometry import hull_stats
from tfhull.analysis.linear_head import analyze as analyze_head
from tfhull.analysis.linear_head import head_of
from tfhull.analysis.rays import ray_scan


def analyze_study(ds, model, measured: dict, train_labels: np.ndarray, records: dict,
                  feature_space=None, *, ray_t_min: float = -1.0, ray_t_max: float = 3.0,
                  ray_points: int = 81, ray_samples: int = 0) -> dict:  # pylint: disable=too-many-locals
  """Every analysis of the study; returns JSON-ready summaries plus "arrays" for the npz.

  Args:
    ds: the `tfhull.data.Dataset`; model: the trained Keras model.
    measured: {(space, split): hull arrays} (`tfhull.hull.saved.load`).
    train_labels: (n,) labels of the training split the hulls were built from.
    records: the attack artifact's `adversarial.npz` arrays.
    feature_space: the `layer:features` `Space` (train and test), for the linear-head analysis.
    ray_*: the ray scan (t range, points per ray, samples; 0 = all test samples).
  """
  out = {"hull": {}, "adversarial": {}, "rays": None, "linear_head": None,
         "error_prediction": None}
  arrays = {}
  for (space, split), a in measured.items():
    out["hull"].setdefault(space, {})[split] = hull_stats(a, train_labels).as_dict()
  pixel = measured.get(("pixel", "test"))
  if pixel is not None:
    for norm in ("inf", "2"):
      adv = perturbation_vs_hull(records, pixel["distance"], pixel["nearest_distance"],
                                          norm)
      if len(adv["source"]):
        out["adversarial"][norm] = {k: v for k, v in adv.items() if np.isscalar(v) or v is None}
        out["adversarial"][norm]["samples"] = int(len(adv["source"]))
        for k in ("source", "perturbation", "perturbation_norm", "d_hull", "d_nn"):
          arrays[f"adv_{norm}_{k}"] = adv[k]
    q = len(ds.x_test) if not ray_samples else min(ray_samples, len(ds.x_test))
    logging.info("analyze: ray scan of %d test samples, %d points each", q, ray_points)
    scan = ray_scan(model, ds.x_test[:q], pixel["projection"][:q], t_min=ray_t_min,
                    t_max=ray_t_max, num=ray_points)
    out["rays"] = {"samples": q, "categories": scan.fractions(),
                   "median_crossing": float(np.nanmedian(scan.crossing))
                                      if np.isfinite(scan.crossing).any() else None,
                   "fraction_label_at_hull_differs": float(np.mean(
                       scan.labels[:, np.searchsorted(scan.t, 0.0)] != scan.labels[
                           :, np.searchsorted(scan.t, 1.0)]))}
    examples = ray_examples(scan.category, 8)
    arrays.update(ray_t=scan.t, ray_margin=scan.margin[examples], ray_examples=examples,
                  ray_crossing=scan.crossing, ray_category=scan.category)
  head = measured.get(("layer:features", "test"))
  if head is not None and feature_space is not None:
    try:
      w, b = head_of(model)
    except (ValueError, TypeError):  # An imported model (keras:PATH) without a Dense `logits`.
      logging.warning("analyze: the model has no Dense layer named 'logits': no linear-head "
                      "analysis")
      w = b = np.zeros((0, 0))
    if w.shape[0] == feature_space.dim:
      stats = analyze_head(feature_space.splits["train"], train_labels,
                           feature_space.splits["test"], w, b)
      closer = stats.boundary_distance < head["distance"]
      out["linear_head"] = {
          "class_min_margin": stats.class_min_margin.tolist(),
          "classes_whose_hull_is_inside_their_region": int(np.sum(stats.class_min_margin > 0)),
          "median_boundary_distance": float(np.median(stats.boundary_distance)),
          "median_hull_distance": float(np.median(head["distance"])),
          "fraction_boundary_closer_than_hull": float(np.mean(closer))}
      arrays.update(class_min_margin=stats.class_min_margin,
                    boundary_distance=stats.boundary_distance, head_hull_distance=head["distance"])
  out["error_prediction"] = _error_prediction(ds, model, measured, feature_space, arrays)
  headline = {}
  for space, by_split in out["hull"].items():
    test = by_split.get("test")
    if test:
      headline[f"outside_fraction[{space}]"] = test["fraction_outside"]
      headline[f"median_dhull_over_dNN[{space}]"] = test["ratio"].get("median")
  if out["rays"]:
    headline["first_crossing"] = {k.split(" (")[0]: v for k, v in
                                  out["rays"]["categories"].items()}
  if out["linear_head"]:
    headline["class_hulls_inside_own_region"] = (
        out["linear_head"]["classes_whose_hull_is_inside_their_region"])
  for norm, a in out["adversarial"].items():
    headline[f"minimal_L{norm}_below_dhull_fraction"] = a["fraction_below_d_hull"]
  ep = out["error_prediction"]
  if ep:
    for name in ("layer:features/d_hull", "layer:features/d_hull_over_d_nn", "knn",
                 "max_softmax"):
      if name in ep["auroc"]:
        headline[f"error_auroc[{name}]"] = ep["auroc"][name]
  out["headline"] = headline
  out["arrays"] = arrays
  return out


def ray_examples(category: np.ndarray, k: int) -> np.ndarray:
  """Up to k sample indices whose rays the report draws: those with a label change first, taken
  round-robin over the crossing categories (lowest index first in each), then the rest."""
  category = np.asarray(category)
  crossing_cats = [c for c in range(3) if np.any(category == c)]
  queues = [list(np.flatnonzero(category == c)) for c in crossing_cats]
  out = []
  while len(out) < k and any(queues):
    for q in queues:
      if q and len(out) < k:
        out.append(int(q.pop(0)))
  rest = [int(i) for i in np.flatnonzero(category == 3)]
  out += rest[:k - len(out)]
  return np.array(sorted(out), np.int64)


def _error_prediction(ds, model, measured: dict, feature_space, arrays: dict):
  """AUROC of the test split's hull scores (every space) and of the max-softmax and k-NN
  baselines for the model's errors on the test split; None without a test-split hull."""
  logits = models.predict(model, ds.x_test)
  correct = logits.argmax(1) == ds.y_test
  hull = {}
  for (space, split), a in measured.items():
    if split != "test" or len(a["distance"]) != len(correct):
      continue
    hull[space] = {"d_hull": a["distance"], "d_nn": a["nearest_distance"],
                   "own_class_distance": a.get("own_class_distance"),
                   "nearest_other_class_distance": a.get("nearest_other_class_distance")}
  if not hull:
    return None
  feats = {}
  if feature_space is not None and len(feature_space.splits["test"]) == len(correct):
    feats = {"train_features": feature_space.splits["train"],
             "test_features": feature_space.splits["test"]}
  res = predict_errors(correct, hull=hull, logits=logits, **feats)
  arrays["error_correct"] = correct
  for name in ("knn", "max_softmax"):
    if name in res.scores:
      arrays[f"error_score_{name}"] = res.scores[name]
  logging.info("analyze: error prediction AUROC %s", res.auroc)
  return res.as_dict()
