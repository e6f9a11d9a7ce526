"""Analyze step: the study's geometry from the hull, attack, model and data artifacts.

  python -m components.analyze --ray_t_max=3 --ray_points=81

For every space and query split: d_hull (certified), d_NN, their ratio, the fraction certified
outside, the projection's support size and class mix, own- vs other-class hull distances.
Adversarial: each sample's minimal perturbation against its d_hull and d_NN (pixel space).
Extrapolation direction: the model's label and margin along the ray from each test sample's
pixel-space hull projection through the sample, and where the first boundary crossing lies.
Linear head: whether each class's training-feature hull lies inside its own decision region,
and each test feature's distance to the nearest boundary vs to the hull. Shifted inputs: AUROC of
the hull scores, k-NN and max-softmax for test vs corrupted or held-out-class inputs. Boundary
geometry (docs/geometry.md): closest flip points, class-hull distances, scope, morphing,
ambiguity. Writes
`analysis.json` (every summary) and `analysis.npz` (the arrays behind the figures).
"""

from absl import flags

from components import common
from tfhull.study import config as study_config

NAME = "analyze"
FLAGS = flags.FLAGS


def define_flags() -> None:
  if "ray_points" in FLAGS:
    return
  flags.DEFINE_float("ray_t_min", -1.0, "Ray scan start: x_t = p + t (x - p), t = 0 at the hull "
                     "projection p, 1 at the sample x.", upper_bound=0.0)
  flags.DEFINE_float("ray_t_max", 3.0, "Ray scan end (> 1: beyond the sample).", lower_bound=1.0)
  flags.DEFINE_integer("ray_points", 81, "Points per ray.", lower_bound=3)
  flags.DEFINE_integer("ray_samples", 0, "Test samples scanned (0 = all).", lower_bound=0)
  flags.DEFINE_list("shift_corruptions", ["shuffled_pixels"], "Shifted inputs whose detection by "
                    "the hull scores is measured: these corruptions of test inputs (any of "
                    "shuffled_pixels, random_pixels, gaussian; empty: none), and the classes "
                    "--classes leaves out.")
  flags.DEFINE_integer("shift_samples", 200, "Inputs per shifted set.", lower_bound=1)
  flags.DEFINE_integer("geometry_samples", 100, "Attacked test samples given a closest-flip-point "
                       "search (input space and linear head; 0: none); docs/geometry.md.",
                       lower_bound=0)
  flags.DEFINE_integer("morph_pairs", 4, "Morphing segments per kind (train/test pairs of the "
                       "same/different class; 0: none).", lower_bound=0)
  flags.DEFINE_float("ambiguity_rel", 0.05, "Ambiguity threshold delta as a fraction of the "
                     "median top-two logit gap on the test set.", lower_bound=0.0)


def config(v) -> study_config.AnalyzeConfig:
  """The analyze step's config from flag values `v`."""
  return study_config.AnalyzeConfig(ray_t_min=v["ray_t_min"], ray_t_max=v["ray_t_max"],
                                    ray_points=v["ray_points"], ray_samples=v["ray_samples"],
                                    shift_corruptions=tuple(v["shift_corruptions"]),
                                    shift_samples=v["shift_samples"],
                                    geometry_samples=v["geometry_samples"],
                                    morph_pairs=v["morph_pairs"],
                                    ambiguity_rel=v["ambiguity_rel"])


if __name__ == "__main__":
  common.main(NAME)
