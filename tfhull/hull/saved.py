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
from tfhull.hull.solver import verdict_counts

INDEX_FILE = "hull.json"


def file_name(space: str, split: str) -> str:
  """hull_<space>__<split>.npz with every non-alphanumeric run replaced by '_'."""
  clean = lambda s: re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")  # pylint: disable=unnecessary-lambda-assignment
  return f"hull_{clean(space)}__{clean(split)}.npz"


def save(directory: str, entries: Sequence[Tuple[str, str, Mapping[str, np.ndarray]]],
         kind: str = "global") -> list:
  """Writes each (space, split, arrays) and the index; returns the index entries.

  kind: "global" (distances to the training hull) or "per_class" (to every class's hull; its
  arrays join the same split's global ones in `load_set`).
  """
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = []
  for space, split, arrays in entries:
    name = file_name(space, split) if kind == "global" else file_name(space, f"{split}_{kind}")
    io.save_npz(io.join(directory, name), arrays)
    index.append({"space": space, "split": split, "kind": kind, "file": name})
  io.write_json(io.join(directory, INDEX_FILE), {"entries": index})
  return index


def save_alias(directory: str, space: str, split: str, alias: Mapping,
               deviation: np.ndarray) -> None:
  """Records that `split` was not solved: row i of its queries lies within `deviation[i]` (same
  space, Euclidean) of row i of `alias["alias_of"]`'s, so it shares that split's results with
  bounds widened by the deviation (`load_set` does this; by the triangle inequality the widened
  interval contains the true distance)."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  name = file_name(space, f"{split}_alias")
  io.save_npz(io.join(directory, name), {"deviation": np.asarray(deviation, np.float64)})
  io.write_json(io.join(directory, INDEX_FILE), {"entries": [
      {"space": space, "split": split, "kind": "alias", "file": name, **alias}]})


def save_empty(directory: str, space: str, split: str) -> None:
  """Records an empty query split (e.g. no attack succeeded): nothing to measure."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  io.write_json(io.join(directory, INDEX_FILE), {"entries": [
      {"space": space, "split": split, "kind": "empty"}]})


def load(directory: str) -> dict:
  """{(space, split): arrays} of one HullDistances artifact directory (aliases left out)."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = io.read_json(io.join(directory, INDEX_FILE))
  return {(e["space"], e["split"]): io.load_npz(io.confined_path(directory, e["file"]))
          for e in index["entries"] if e.get("kind", "global") == "global"}


def load_set(arts) -> dict:
  """{(space, split): arrays} of several HullDistances artifacts (objects with `.uri`): per-class
  arrays merged into their split's, aliased splits sharing their target's arrays (with the key
  "alias_of" added)."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  entries = []
  for art in arts:
    for e in io.read_json(io.join(art.uri, INDEX_FILE))["entries"]:
      entries.append((art.uri, e))
  out = {}
  for kind in ("global", "per_class", "alias"):
    for uri, e in entries:
      if e.get("kind", "global") != kind:
        continue
      key = (e["space"], e["split"])
      arrays = io.load_npz(io.confined_path(uri, e["file"]))
      if kind == "alias":
        target = out.get((e["space"], e["alias_of"]))
        if target is not None:
          out[key] = _widened(target, arrays["deviation"], e["alias_of"])
        continue
      if kind == "per_class":
        if key in out:
          out[key] = {**out[key], **arrays}
      else:
        out[key] = arrays
  return out


def _widened(target: Mapping, deviation: np.ndarray, alias_of: str) -> dict:
  """The arrays of queries within `deviation` (q,) of `target`'s: distance kept, the interval
  widened to [lower - deviation, upper + deviation], verdicts recomputed from it."""
  lower = np.maximum(target["lower_bound"] - deviation, 0.0)
  upper = target["upper_bound"] + deviation
  out = {k: v for k, v in target.items() if not k.startswith(("class_", "own_", "nearest_other"))}
  outside = lower > 0
  inside = ~outside & (upper <= target["abs_tol"])
  out.update(lower_bound=lower, upper_bound=upper, outside=outside, inside=inside,
             verdict=np.where(outside, 2, np.where(inside, 1, 0)).astype(np.int8),
             rel_gap=(upper - lower) / np.maximum(upper, 1e-30),
             alias_deviation=deviation, alias_of=np.asarray(alias_of))
  return out


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
    class_arrays, class_summary = measure_classes(points, point_labels, queries, query_labels,
                                                  num_classes, solver, strategy, label)
    arrays.update(class_arrays)
    summary.update({k: v for k, v in class_summary.items()
                    if k.startswith(("median", "frac", "class_hulls"))})
  return arrays, summary


def measure_classes(points, point_labels, queries, query_labels, num_classes, solver, strategy,
                    label=""):
  """Distances of `queries` (q, d) to the hull of every class of `points` (n, d): arrays
  class_upper_bound / class_lower_bound / class_verdict / class_converged (q, classes),
  own_class_distance, nearest_other_class(_distance) (q,), and their JSON summary (with the
  verdict counts over all (query, class) pairs)."""
  logging.info("hull [%s]: %d queries vs %d class hulls", label, len(queries), num_classes)
  pc = per_class_distances(points, point_labels, queries, query_labels,
                           num_classes=num_classes, strategy=strategy, **solver)
  arrays = dict(class_upper_bound=pc.upper_bound, class_lower_bound=pc.lower_bound,
                class_verdict=pc.verdict, class_converged=pc.converged,
                own_class_distance=pc.own_distance, nearest_other_class=pc.nearest_other_class,
                nearest_other_class_distance=pc.nearest_other_distance)
  summary = {
      "queries": int(len(queries)), "classes": int(num_classes),
      "median_own_class_distance": float(np.median(pc.own_distance)),
      "median_nearest_other_class_distance": float(np.median(pc.nearest_other_distance)),
      "fraction_certified_closer_to_own_class": float(np.mean(pc.closer_to_own)),
      "class_hulls": verdict_counts(pc.verdict, pc.converged)}
  return arrays, summary
