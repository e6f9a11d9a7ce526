r"""Hull step: certified distances of a query set to the convex hull of the training set, per space.

  python -m components.hull --hull_per_class --hull_rel_tol=1e-4
  python -m components.hull --features_artifact=runs/x/features/0123456789abcdef \
      --hull_spaces=layer:features --hull_query_splits=test,adv_cw_l2_2

Reads a Representation artifact and, for each space (all of them unless --hull_spaces narrows
them) and each query split (--hull_query_splits: the test split and the attack step's minimal
adversarial examples and flip points by default), projects the split onto the hull of that
space's training split. Writes a HullDistances artifact: `hull_<space>__<split>.npz` (per query:
distance interval, rel_gap, outside/inside verdicts, projection, support indices and weights,
nearest neighbour, separating hyperplane, and for the test split with --hull_per_class the
distance to every class hull), `hull.json` (the index) and the summaries in `metadata.json`.
"""

from absl import flags

from components import common
from tfhull.study import config as study_config

NAME = "hull"
FLAGS = flags.FLAGS


def define_flags() -> None:
  if "hull_rel_tol" in FLAGS:
    return
  flags.DEFINE_list("hull_spaces", [], "Spaces of the Representation artifact to measure "
                    "(default: all of them), e.g. pixel,layer:features.")
  flags.DEFINE_list("hull_query_splits", ["test", "adv_min_pgd_*", "flip_min_pgd_*"],
                    "Splits of each space projected onto the hull of its training split: test, "
                    "train (each point lies in the hull), the attack step's adv_<attack>_<norm> "
                    "and flip_<attack>_<norm>; shell patterns match the splits present.")
  flags.DEFINE_bool("hull_per_class", True, "For the test split, also the distance to every "
                    "class's hull (own class vs nearest other class).")
  flags.DEFINE_float("hull_rel_tol", 1e-4, "Certified relative gap (UB-LB)/UB at which a query "
                     "stops.", lower_bound=1e-9, upper_bound=0.5)
  flags.DEFINE_float("hull_abs_tol", None, "Distance at or below which a query counts as inside "
                     "(default 1e-4 x its nearest-neighbour distance).", lower_bound=0.0)
  flags.DEFINE_integer("hull_max_passes", 40, "Full passes over the training set per batch.",
                       lower_bound=2)
  flags.DEFINE_integer("hull_batch_size", 256, "Queries solved together.", lower_bound=1)
  flags.DEFINE_integer("hull_working_set", 0, "Working-set slots per query (must exceed the "
                       "support size); 0: automatic (128, or 256 with 128 atoms per pass from "
                       "32,768 training points).", lower_bound=0)
  flags.DEFINE_integer("hull_inner_steps", 4096, "Restricted Frank-Wolfe steps per pass; lower "
                       "(e.g. 512) is much faster in low-dimensional spaces where many queries "
                       "lie inside the hull.", lower_bound=16)
  flags.DEFINE_enum("hull_dtype", "float32", ["float32", "float64"], "Compute dtype.")
  flags.DEFINE_enum("hull_method", "column_generation",
                    ["column_generation", "projected_gradient", "auto"],
                    "Hull solver: column generation (fastest measured on CPU), projected "
                    "gradient (FISTA in one XLA program per batch) or auto (the method measured "
                    "fastest: column generation so far; docs/solver-methods.md).")
  flags.DEFINE_float("hull_alias_tol", 0.05, "A flip split whose points lie within this "
                     "fraction of each row's perturbation of its adversarial split's points is "
                     "not solved again: it shares that split's results, its certified bounds "
                     "widened by each row's distance (recorded in the artifact); 0 measures every "
                     "split.", lower_bound=0.0, upper_bound=0.5)


def config(v) -> study_config.HullConfig:
  """The hull step's config from flag values `v`."""
  return study_config.HullConfig(
      spaces=tuple(v["hull_spaces"]), query_splits=tuple(v["hull_query_splits"]),
      per_class=v["hull_per_class"], rel_tol=v["hull_rel_tol"], abs_tol=v["hull_abs_tol"],
      max_passes=v["hull_max_passes"], batch_size=v["hull_batch_size"],
      working_set_size=v["hull_working_set"], max_inner_steps=v["hull_inner_steps"],
      dtype=v["hull_dtype"], alias_tol=v["hull_alias_tol"], method=v["hull_method"])


if __name__ == "__main__":
  common.main(NAME)
