"""Analyze step: the study's geometry from the hull, attack, model and data artifacts.

  python -m components.analyze --ray_t_max=3 --ray_points=81

For every space and query split: d_hull (certified), d_NN, their ratio, the fraction certified
outside, the projection's support size and class mix, own- vs other-class hull distances.
Adversarial: each sample's minimal perturbation against its d_hull and d_NN (pixel space).
Extrapolation direction: the model's label and margin along the ray from each test sample's
pixel-space hull projection through the sample, and where the first boundary crossing lies.
Linear head: whether each class's training-feature hull lies inside its own decision region,
and each test feature's distance to the nearest boundary vs to the hull. Writes
`analysis.json` (every summary) and `analysis.npz` (the arrays behind the figures).
"""

import sys

from absl import flags
from absl import logging
import numpy as np

import tfhull.data
from components import common
from tfhull import analysis
from tfhull import io
from tfhull import models
from tfhull import representations
from tfhull.hull import saved

NAME = "analyze"
VERSION = "1"
OUTPUT_TYPE = "Analysis"
INPUTS = ("data", "train", "attack", "features", "hull")

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "ray_points" in FLAGS:
    return
  flags.DEFINE_float("ray_t_min", -1.0, "Ray scan start: x_t = p + t (x - p), t = 0 at the hull "
                     "projection p, 1 at the sample x.", upper_bound=0.0)
  flags.DEFINE_float("ray_t_max", 3.0, "Ray scan end (> 1: beyond the sample).", lower_bound=1.0)
  flags.DEFINE_integer("ray_points", 81, "Points per ray.", lower_bound=3)
  flags.DEFINE_integer("ray_samples", 0, "Test samples scanned (0 = all).", lower_bound=0)


def params() -> dict:
  return {"ray_t_min": FLAGS.ray_t_min, "ray_t_max": FLAGS.ray_t_max,
          "ray_points": FLAGS.ray_points, "ray_samples": FLAGS.ray_samples}


def check_flags() -> None:
  params()


def run(inputs: dict):
  p = params()

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(inputs["data"].uri)
    model = models.load_artifact(inputs["train"], strategy=common.strategy())
    measured = saved.load(inputs["hull"].uri)
    feats_dir = inputs["features"].uri
    labels = io.load_npz(io.join(feats_dir, representations.spaces.LABELS_FILE))
    out = analyze(ds, model, measured, labels, io.load_npz(inputs["attack"].path(
        "adversarial.npz")), feats_dir, p)
    arrays = out.pop("arrays")
    io.save_npz(io.join(out_dir, "analysis.npz"), arrays)
    io.write_json(io.join(out_dir, "analysis.json"), out)
    return {**out["headline"], "headline": list(out["headline"])}

  return common.run_step(sys.modules[__name__], p, inputs, build)


def analyze(ds, model, measured, labels, records, feats_dir, p) -> dict:  # pylint: disable=too-many-locals
  """Every analysis of the study; returns JSON-ready summaries plus "arrays" for the npz."""
  train_labels = labels["train"]
  out = {"hull": {}, "adversarial": {}, "rays": None, "linear_head": None}
  arrays = {}
  for (space, split), a in measured.items():
    out["hull"].setdefault(space, {})[split] = analysis.hull_stats(a, train_labels).as_dict()
  pixel = measured.get(("pixel", "test"))
  if pixel is not None:
    for norm in ("inf", "2"):
      adv = analysis.perturbation_vs_hull(records, pixel["distance"], pixel["nearest_distance"],
                                          norm)
      if len(adv["source"]):
        out["adversarial"][norm] = {k: v for k, v in adv.items() if np.isscalar(v) or v is None}
        out["adversarial"][norm]["samples"] = int(len(adv["source"]))
        for k in ("source", "perturbation", "perturbation_norm", "d_hull", "d_nn"):
          arrays[f"adv_{norm}_{k}"] = adv[k]
    q = len(ds.x_test) if not p["ray_samples"] else min(p["ray_samples"], len(ds.x_test))
    logging.info("analyze: ray scan of %d test samples, %d points each", q, p["ray_points"])
    scan = analysis.ray_scan(model, ds.x_test[:q], pixel["projection"][:q], t_min=p["ray_t_min"],
                             t_max=p["ray_t_max"], num=p["ray_points"])
    out["rays"] = {"samples": q, "categories": scan.fractions(),
                   "median_crossing": float(np.nanmedian(scan.crossing))
                                      if np.isfinite(scan.crossing).any() else None,
                   "fraction_label_at_hull_differs": float(np.mean(
                       scan.labels[:, np.searchsorted(scan.t, 0.0)] != scan.labels[
                           :, np.searchsorted(scan.t, 1.0)]))}
    arrays.update(ray_t=scan.t, ray_margin=scan.margin[:8], ray_crossing=scan.crossing,
                  ray_category=scan.category)
  head = measured.get(("layer:features", "test"))
  if head is not None:
    space = representations.load(feats_dir, ["layer:features"]).spaces["layer:features"]
    w, b = analysis.head_of(model)
    if w.shape[0] == space.dim:
      stats = analysis.linear_head(space.splits["train"], train_labels, space.splits["test"], w, b)
      closer = stats.boundary_distance < head["distance"]
      out["linear_head"] = {
          "class_min_margin": stats.class_min_margin.tolist(),
          "classes_whose_hull_is_inside_their_region": int(np.sum(stats.class_min_margin > 0)),
          "median_boundary_distance": float(np.median(stats.boundary_distance)),
          "median_hull_distance": float(np.median(head["distance"])),
          "fraction_boundary_closer_than_hull": float(np.mean(closer))}
      arrays.update(class_min_margin=stats.class_min_margin,
                    boundary_distance=stats.boundary_distance, head_hull_distance=head["distance"])
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
  out["headline"] = headline
  out["arrays"] = arrays
  return out


if __name__ == "__main__":
  common.main(NAME)
