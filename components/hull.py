"""Hull step: certified distances of a query set to the convex hull of the training set, per space.

  python -m components.hull --hull_per_class --hull_rel_tol=1e-4
  python -m components.hull --features_artifact=runs/x/features/0123456789abcdef \
      --hull_spaces=layer:features --hull_query_split=test

Reads a Representation artifact and, for each space (all of them unless --hull_spaces narrows
them), projects the query split onto the hull of that space's training split. Writes a
HullDistances artifact: `hull_<space>.npz` per space (per query: distance interval, rel_gap,
outside/inside verdicts, projection, support indices and weights, nearest neighbour, separating
hyperplane, and with --hull_per_class the distance to every class hull), `hull.json` (the index)
and the per-space summaries in `metadata.json`.
"""

import sys

from absl import flags
from absl import logging
import numpy as np

from components import common
from tfhull import io
from tfhull import hull
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
  flags.DEFINE_string("hull_query_split", "test", "Which split of each space is projected onto "
                      "the hull of the training split: test, train (each point lies in the hull), "
                      "or a split added later (adversarial examples).")
  flags.DEFINE_bool("hull_per_class", True, "Also the distance to every class's hull (own class "
                    "vs nearest other class).")
  flags.DEFINE_float("hull_rel_tol", 1e-4, "Certified relative gap (UB-LB)/UB at which a query "
                     "stops.", lower_bound=1e-9, upper_bound=0.5)
  flags.DEFINE_float("hull_abs_tol", None, "Distance at or below which a query counts as inside "
                     "(default 1e-4 x its nearest-neighbour distance).", lower_bound=0.0)
  flags.DEFINE_integer("hull_max_passes", 40, "Full passes over the training set per batch.",
                       lower_bound=2)
  flags.DEFINE_integer("hull_batch_size", 256, "Queries solved together.", lower_bound=1)
  flags.DEFINE_integer("hull_working_set", 128, "Working-set slots per query (must exceed the "
                       "support size).", lower_bound=2)
  flags.DEFINE_enum("hull_dtype", "float32", ["float32", "float64"], "Compute dtype.")


def params() -> dict:
  return {
      "spaces": [representations.parse_representation(s).spec for s in FLAGS.hull_spaces],
      "query_split": FLAGS.hull_query_split,
      "per_class": FLAGS.hull_per_class,
      "rel_tol": FLAGS.hull_rel_tol,
      "abs_tol": FLAGS.hull_abs_tol,
      "max_passes": FLAGS.hull_max_passes,
      "batch_size": FLAGS.hull_batch_size,
      "working_set_size": FLAGS.hull_working_set,
      "dtype": FLAGS.hull_dtype,
  }


def check_flags() -> None:
  params()  # Parses the --hull_spaces specs.


def run(inputs: dict):
  p = params()

  def build(out_dir: str) -> dict:
    feats = representations.load(inputs["features"].uri, p["spaces"] or None)
    split = p["query_split"]
    solver = dict(rel_tol=p["rel_tol"], abs_tol=p["abs_tol"], max_passes=p["max_passes"],
                  batch_size=p["batch_size"], working_set_size=p["working_set_size"],
                  dtype=p["dtype"])
    strategy = common.strategy() if common.STRATEGY.value != "default" else None
    index, per_space = [], {}
    for spec, space in feats.spaces.items():
      if split not in space.splits:
        raise UserError(f"space {spec} has no split {split!r} (it has "
                        f"{', '.join(space.splits)}); pick one with --hull_query_split")
      if not len(space.splits[split]):
        raise UserError(f"split {split!r} of space {spec} is empty (e.g. no attack succeeded); "
                        "pick another --hull_query_split")
      arrays, summary = measure(space.splits["train"], feats.labels["train"], space.splits[split],
                                feats.labels.get(split), feats.num_classes, p["per_class"],
                                solver, strategy, label=f"{spec}, {split}")
      name = "hull_" + representations.spaces.file_name(spec)[len("space_"):]
      io.save_npz(io.join(out_dir, name), arrays)
      index.append({"space": spec, "file": name})
      per_space[spec] = {"query_split": split, **summary}
    io.write_json(io.join(out_dir, "hull.json"), {"spaces": index, "query_split": split})
    return {
        "spaces": per_space,
        "fraction_outside_certified": {k: v["fraction_outside_certified"]
                                       for k, v in per_space.items()},
        "median_distance": {k: v["distance"][50] for k, v in per_space.items()},
        "headline": ["fraction_outside_certified", "median_distance"],
    }

  return common.run_step(sys.modules[__name__], p, inputs, build)


def measure(points, point_labels, queries, query_labels, num_classes, per_class, solver,
            strategy, label=""):
  """Hull distances of `queries` (q, d) to the hull of `points` (n, d): (arrays, summary)."""
  logging.info("hull [%s]: %d queries vs the hull of %d training points (d=%d)", label,
               len(queries), len(points), points.shape[1])
  res = hull.project_onto_hull(points, queries, strategy=strategy, progress=True, **solver)
  arrays = {
      "distance": res.distance, "lower_bound": res.lower_bound,
      "upper_bound": res.upper_bound, "rel_gap": res.rel_gap, "outside": res.outside,
      "inside": res.inside, "converged": res.converged,
      "projection": res.projection.astype(np.float32), "support": res.support,
      "weights": res.weights, "nnz": res.nnz, "nearest_index": res.nearest_index,
      "nearest_distance": res.nearest_distance,
      "hyperplane_normal": res.hyperplane_normal.astype(np.float32),
      "hyperplane_offset": res.hyperplane_offset, "abs_tol": res.abs_tol,
      "passes": res.passes, "iterations": res.iterations,
  }
  summary = {"points": int(len(points)), "dim": int(points.shape[1]), **res.summary()}
  if query_labels is not None:
    arrays["query_labels"] = query_labels
  if per_class and query_labels is not None:
    pc = hull.per_class_distances(points, point_labels, queries, query_labels,
                                  num_classes=num_classes, strategy=strategy, **solver)
    arrays.update(class_upper_bound=pc.upper_bound, class_lower_bound=pc.lower_bound,
                  own_class_distance=pc.own_distance,
                  nearest_other_class=pc.nearest_other_class,
                  nearest_other_class_distance=pc.nearest_other_distance)
    summary.update(
        median_own_class_distance=float(np.median(pc.own_distance)),
        median_nearest_other_class_distance=float(np.median(pc.nearest_other_distance)),
        fraction_certified_closer_to_own_class=float(np.mean(pc.closer_to_own)))
  return arrays, summary


if __name__ == "__main__":
  common.main(NAME)
