"""Hull step: certified distances of a query set to the convex hull of the training set, per space.

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

import fnmatch
import sys

from absl import flags
from absl import logging

from components import common
from tfhull.hull import saved
from tfhull import representations
from tfhull.errors import UserError

NAME = "hull"
VERSION = "2"
OUTPUT_TYPE = "HullDistances"
INPUTS = ("features",)

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
  flags.DEFINE_integer("hull_working_set", 128, "Working-set slots per query (must exceed the "
                       "support size).", lower_bound=2)
  flags.DEFINE_integer("hull_inner_steps", 4096, "Restricted Frank-Wolfe steps per pass; lower "
                       "(e.g. 512) is much faster in low-dimensional spaces where many queries "
                       "lie inside the hull.", lower_bound=16)
  flags.DEFINE_enum("hull_dtype", "float32", ["float32", "float64"], "Compute dtype.")


def params() -> dict:
  return {
      "spaces": [representations.parse_representation(s).spec for s in FLAGS.hull_spaces],
      "query_splits": list(FLAGS.hull_query_splits),
      "per_class": FLAGS.hull_per_class,
      "rel_tol": FLAGS.hull_rel_tol,
      "abs_tol": FLAGS.hull_abs_tol,
      "max_passes": FLAGS.hull_max_passes,
      "batch_size": FLAGS.hull_batch_size,
      "working_set_size": FLAGS.hull_working_set,
      "max_inner_steps": FLAGS.hull_inner_steps,
      "dtype": FLAGS.hull_dtype,
  }


def check_flags() -> None:
  params()  # Parses the --hull_spaces specs.


def _splits(patterns, available, spec):
  """The available splits matching the patterns, in pattern order; a literal that matches
  nothing is an error, a pattern that matches nothing is skipped."""
  chosen = []
  for pattern in patterns:
    hits = [s for s in available if fnmatch.fnmatchcase(s, pattern)]
    if not hits and not any(c in pattern for c in "*?["):
      raise UserError(f"space {spec} has no split {pattern!r} (it has {', '.join(available)}); "
                      "fix --hull_query_splits")
    chosen += [h for h in hits if h not in chosen]
  return chosen


def run(inputs: dict):
  p = params()

  def build(out_dir: str) -> dict:
    feats = representations.load(inputs["features"].uri, p["spaces"] or None)
    solver = dict(rel_tol=p["rel_tol"], abs_tol=p["abs_tol"], max_passes=p["max_passes"],
                  batch_size=p["batch_size"], working_set_size=p["working_set_size"],
                  max_inner_steps=p["max_inner_steps"], dtype=p["dtype"])
    strategy = common.strategy() if common.STRATEGY.value != "default" else None
    entries, per_space = [], {}
    for spec, space in feats.spaces.items():
      for split in _splits(p["query_splits"], list(space.splits), spec):
        if not len(space.splits[split]):
          logging.warning("hull: split %s of space %s is empty (no attack succeeded?); skipped",
                          split, spec)
          continue
        arrays, summary = saved.measure(space.splits["train"], feats.labels["train"],
                                  space.splits[split], feats.labels.get(split),
                                  feats.num_classes, p["per_class"] and split == "test", solver,
                                  strategy, label=f"{spec}, {split}")
        entries.append((spec, split, arrays))
        per_space.setdefault(spec, {})[split] = summary
    if not entries:
      raise UserError(f"--hull_query_splits={','.join(p['query_splits'])} selects no non-empty "
                      "split; list test or an adv_/flip_ split")
    saved.save(out_dir, entries)
    first = {k: v.get("test", next(iter(v.values()))) for k, v in per_space.items()}
    return {
        "spaces": per_space,
        "fraction_outside_certified": {k: {s: v["fraction_outside_certified"]
                                           for s, v in d.items()} for k, d in per_space.items()},
        "test_fraction_outside": {k: v["fraction_outside_certified"] for k, v in first.items()},
        "median_test_distance": {k: v["distance"][50] for k, v in first.items()},
        "headline": ["test_fraction_outside", "median_test_distance"],
    }

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
