"""Hull measurements and their saved form: one npz per (space, query split) plus an index.

  arrays, summary = measure(points, labels, queries, query_labels, 10, True, solver, None)
  save(directory, [(space, split, arrays), ...]); measurements = load(directory)
  measurements[("pixel", "test")]["distance"]
"""

import re
from typing import Mapping, Sequence, Tuple

from absl import logging
import numpy as np

from tfhull.hull.classes import per_class_distances
from tfhull.hull.solver import project_onto_hull

INDEX_FILE = "hull.json"


def file_name(space: str, split: str) -> str:
  """hull_<space>__<split>.npz with every non-alphanumeric run replaced by '_'."""
  clean = lambda s: re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")  # pylint: disable=unnecessary-lambda-assignment
  return f"hull_{clean(space)}__{clean(split)}.npz"


def save(directory: str, entries: Sequence[Tuple[str, str, Mapping[str, np.ndarray]]]) -> list:
  """Writes each (space, split, arrays) and the index; returns the index entries."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = []
  for space, split, arrays in entries:
    name = file_name(space, split)
    io.save_npz(io.join(directory, name), arrays)
    index.append({"space": space, "split": split, "file": name})
  io.write_json(io.join(directory, INDEX_FILE), {"entries": index})
  return index


def load(directory: str) -> dict:
  """{(space, split): arrays} of a HullDistances artifact directory."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = io.read_json(io.join(directory, INDEX_FILE))
  return {(e["space"], e["split"]): io.load_npz(io.join(directory, e["file"]))
          for e in index["entries"]}


def measure(points, point_labels, queries, query_labels, num_classes, per_class, solver,
            strategy, label=""):
  """Hull distances of `queries` (q, d) to the hull of `points` (n, d), as saved by the hull step.

  Returns (arrays, summary): every per-query field of the `HullResult` (and, with `per_class`
  and labels, the distance to every class hull), and its JSON-ready summary.

  `verdict` is int8: 2 outside (certified, lower_bound > 0), 1 inside (distance <= abs_tol,
  weights witness it), 0 undetermined (`tfhull.hull.solver.OUTSIDE/INSIDE/UNDETERMINED`); the
  summary counts each verdict and the unconverged queries (`outside`, `inside`, `undetermined`,
  `unconverged`).
  """
  logging.info("hull [%s]: %d queries vs the hull of %d training points (d=%d)", label,
               len(queries), len(points), points.shape[1])
  res = project_onto_hull(points, queries, strategy=strategy, progress=True, **solver)
  arrays = {
      "distance": res.distance, "lower_bound": res.lower_bound,
      "upper_bound": res.upper_bound, "rel_gap": res.rel_gap, "outside": res.outside,
      "inside": res.inside, "verdict": res.verdict, "converged": res.converged,
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
    pc = per_class_distances(points, point_labels, queries, query_labels,
                                  num_classes=num_classes, strategy=strategy, **solver)
    arrays.update(class_upper_bound=pc.upper_bound, class_lower_bound=pc.lower_bound,
                  class_verdict=pc.verdict, class_converged=pc.converged,
                  own_class_distance=pc.own_distance,
                  nearest_other_class=pc.nearest_other_class,
                  nearest_other_class_distance=pc.nearest_other_distance)
    summary.update(
        median_own_class_distance=float(np.median(pc.own_distance)),
        median_nearest_other_class_distance=float(np.median(pc.nearest_other_distance)),
        fraction_certified_closer_to_own_class=float(np.mean(pc.closer_to_own)),
        class_hulls={"outside": int(np.sum(pc.verdict == 2)),
                     "inside": int(np.sum(pc.verdict == 1)),
                     "undetermined": int(np.sum(pc.verdict == 0)),
                     "unconverged": int(np.sum(~pc.converged))})
  return arrays, summary
