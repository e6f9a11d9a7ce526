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
    feature_space = None
    if ("layer:features", "test") in measured:
      feature_space = representations.load(feats_dir, ["layer:features"]).spaces[
          "layer:features"]
    out = analysis.analyze_study(
        ds, model, measured, labels["train"],
        io.load_npz(inputs["attack"].path("adversarial.npz")), feature_space,
        ray_t_min=p["ray_t_min"], ray_t_max=p["ray_t_max"], ray_points=p["ray_points"],
        ray_samples=p["ray_samples"])
    arrays = out.pop("arrays")
    io.save_npz(io.join(out_dir, "analysis.npz"), arrays)
    io.write_json(io.join(out_dir, "analysis.json"), out)
    return {**out["headline"], "headline": list(out["headline"])}

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
