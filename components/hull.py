"""Hull step: certified distances of a query set to the convex hull of the training set.

  python -m components.hull --hull_per_class --hull_rel_tol=1e-4
  python -m components.hull --data_artifact=runs/x/data/0123456789abcdef --hull_query_split=test

Reads a Dataset artifact, flattens both splits (pixel space), and writes a HullDistances artifact:
`hull.npz` (per query: distance interval, rel_gap, outside/inside verdicts, projection, support
indices and weights, nearest neighbour, separating hyperplane, and with --hull_per_class the
distance to every class hull) plus the summary in `metadata.json`.
"""

import sys

from absl import flags
from absl import logging
import numpy as np

import tfhull.data
from components import common
from tfhull import io
from tfhull import hull

NAME = "hull"
VERSION = "1"
OUTPUT_TYPE = "HullDistances"
INPUTS = ("data",)

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "hull_rel_tol" in FLAGS:
    return
  flags.DEFINE_enum("hull_query_split", "test", ["test", "train"],
                    "Which split of the query artifact is projected onto the training hull.")
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
      "space": "pixel",
      "query_split": FLAGS.hull_query_split,
      "per_class": FLAGS.hull_per_class,
      "rel_tol": FLAGS.hull_rel_tol,
      "abs_tol": FLAGS.hull_abs_tol,
      "max_passes": FLAGS.hull_max_passes,
      "batch_size": FLAGS.hull_batch_size,
      "working_set_size": FLAGS.hull_working_set,
      "dtype": FLAGS.hull_dtype,
  }


def run(inputs: dict):
  p = params()

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(inputs["data"].uri)
    points = tfhull.data.flatten(ds.x_train)
    split = p["query_split"]
    queries = tfhull.data.flatten(ds.x_test if split == "test" else ds.x_train)
    query_labels = ds.y_test if split == "test" else ds.y_train
    solver = dict(rel_tol=p["rel_tol"], abs_tol=p["abs_tol"], max_passes=p["max_passes"],
                  batch_size=p["batch_size"], working_set_size=p["working_set_size"],
                  dtype=p["dtype"])
    strategy = common.strategy() if common.STRATEGY.value != "default" else None
    logging.info("hull: %d %s queries vs the hull of %d training points (d=%d)",
                 len(queries), split, len(points), points.shape[1])
    res = hull.project_onto_hull(points, queries, strategy=strategy, progress=True, **solver)
    arrays = {
        "query_labels": query_labels,
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
    summary = {"space": "pixel", "query_split": split, "points": int(len(points)),
               "dim": int(points.shape[1]), **res.summary()}
    if p["per_class"]:
      pc = hull.per_class_distances(points, ds.y_train, queries, query_labels,
                                    num_classes=ds.num_classes, strategy=strategy, **solver)
      arrays.update(class_upper_bound=pc.upper_bound, class_lower_bound=pc.lower_bound,
                    own_class_distance=pc.own_distance,
                    nearest_other_class=pc.nearest_other_class,
                    nearest_other_class_distance=pc.nearest_other_distance)
      summary.update(
          median_own_class_distance=float(np.median(pc.own_distance)),
          median_nearest_other_class_distance=float(np.median(pc.nearest_other_distance)),
          fraction_certified_closer_to_own_class=float(np.mean(pc.closer_to_own)))
    io.save_npz(io.join(out_dir, "hull.npz"), arrays)
    summary["headline"] = ["queries", "fraction_outside_certified", "fraction_inside",
                           "max_rel_gap_outside", "mean_passes"]
    return summary

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
