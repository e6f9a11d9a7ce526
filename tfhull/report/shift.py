"""The study report's section on shifted inputs: AUROC of the hull scores against the OOD
baselines for in-distribution test inputs vs each shifted set (`tfhull.analysis.shift`)."""

from typing import Mapping, Optional

from tfhull.report import html
from tfhull.report import names

SCORES = {"d_hull": "d_hull", "d_hull_over_d_nn": "d_hull/d_NN",
          "class_hull_margin": "class-hull margin (predicted class)",
          "max_softmax": "1 - max softmax", "knn": "k-NN feature distance"}
SETS = {"shuffled_pixels": "shuffled pixels", "random_pixels": "random pixels",
        "gaussian": "Gaussian noise", "held_out_classes": "held-out classes"}


def shift_rows(shift: Optional[Mapping], dims: Optional[Mapping] = None) -> list:
  """[(shifted set, space, score, AUROC (95% interval))], the baselines under space "-"."""
  rows = []
  for name, d in ((shift or {}).get("sets") or {}).items():
    for r in d["rows"]:
      low, high = r["interval"] or (None, None)
      space = "-" if r["space"] == "-" else names.space_name(r["space"], (dims or {}).get(
          r["space"]))
      rows.append((f"{SETS.get(name, name)} ({d['samples_shifted']} vs "
                   f"{d['samples_in_distribution']} test)", space,
                   SCORES.get(r["score"], r["score"]),
                   html.fmt(r["auroc"], 3) + (f" ({html.fmt(low, 2)} to {html.fmt(high, 2)})"
                                              if low is not None else "")))
  return rows


def shift_section(shift: Optional[Mapping], dims: Optional[Mapping] = None) -> html.Section:
  s = html.Section(
      "shift", "The hull as a detector of shifted inputs",
      "AUROC (95% stratified-bootstrap interval) of each score for telling shifted inputs "
      "(positives) from the in-distribution test set; larger scores mean more likely shifted, "
      "0.5 is chance. Shifted sets: test inputs under the data corruptions "
      "(--shift_corruptions) and, when --classes keeps a subset, test inputs of the other "
      "classes. The class-hull margin uses the predicted class. Baselines: 1 - max softmax "
      "and the k-th nearest-neighbour distance between L2-normalised penultimate features "
      "(Sun et al. 2022).")
  rows = shift_rows(shift, dims)
  if rows:
    s.tables.append(html.Table("Shift detection AUROC", ("shifted set", "space", "score",
                                                         "AUROC (95% interval)"), rows,
                               name="shift_detection"))
  else:
    s.skipped.append("Shift detection skipped: no shifted set (--shift_corruptions is empty and "
                     "--classes keeps every class).")
  return s
