"""The study's headline numbers and summary table, defined once for the study report and the
sweep page (plain dicts in: step summaries and analysis.json).

  m = study_metrics(train_summary, attack_summary, {(space, split): hull_summary}, analysis)
  rows = headline_rows(m)     # [(quantity, value, meaning)]
"""

from typing import Mapping, Tuple

from tfhull.report.html import fmt


def _test_spaces(hull: Mapping[Tuple[str, str], dict]) -> list:
  return [space for (space, split) in hull if split == "test"]


def study_metrics(train: dict, attack: dict, hull: Mapping[Tuple[str, str], dict],
                  analysis: dict) -> dict:
  """The numbers behind the summary table (metrics.json), spaces in the study's order.

  Args:
    train, attack: the train and attack steps' summaries.
    hull: (space, split) -> that hull node's summary (global kind).
    analysis: the analyze step's analysis.json.
  """
  an_hull = analysis["hull"]
  spaces = _test_spaces(hull)
  minimal = attack.get("median_minimal_l2", {})
  return {
      "params": train["params"], "params_per_example": train["params_per_example"],
      "params_per_constraint": train["params_per_constraint"],
      "train_accuracy": train["train_accuracy"], "test_accuracy": train["test_accuracy"],
      "epochs_run": train["epochs_run"], "interpolated": train.get("interpolated"),
      "test_fraction_outside": {s: hull[(s, "test")]["fraction_outside_certified"]
                                for s in spaces},
      "median_test_distance": {s: hull[(s, "test")]["median_distance"] for s in spaces},
      "median_dhull_over_dnn": {s: an_hull[s]["test"]["ratio"].get("median")
                                for s in spaces if "test" in an_hull.get(s, {})},
      "median_nnz": {s: an_hull[s]["test"]["nnz"].get("median") for s in spaces
                     if "test" in an_hull.get(s, {})},
      "adversarial_fraction_outside": {
          s: {k: v["fraction_outside"] for k, v in an_hull[s].items() if k != "test"}
          for s in an_hull},
      "clean_accuracy_attacked": attack["clean_accuracy"],
      "worst_case_robust_accuracy": attack["worst_case_robust_accuracy"],
      "median_minimal_l2": minimal,
      "median_minimal_l2_headline": minimal.get("min_pgd/2", minimal.get("cw_l2/2")),
      "ray_first_crossing": (analysis.get("rays") or {}).get("categories"),
      "linear_head": analysis.get("linear_head"),
      "minimal_perturbation_vs_hull": analysis.get("adversarial"),
  }


def headline_rows(m: dict) -> list:
  """The summary table [(quantity, value, meaning)] of `study_metrics`."""
  rows = [
      ("Parameters", f"{m['params']:,}", f"{fmt(m['params_per_example'])} per training "
       f"example, {fmt(m['params_per_constraint'])} per constraint (n x classes)"),
      ("Training accuracy", fmt(m["train_accuracy"], 4),
       f"after {m['epochs_run']} epochs; 1 means the model interpolates the training set"),
      ("Test accuracy", fmt(m["test_accuracy"], 4), "on the clean test set"),
  ]
  for space, frac in m["test_fraction_outside"].items():
    rows.append((f"Test outside the hull [{space}]", fmt(frac),
                 f"fraction certified outside; median d_hull "
                 f"{fmt(m['median_test_distance'][space])}, median d_hull/d_NN "
                 f"{fmt(m['median_dhull_over_dnn'].get(space))}"))
  for space, by_split in m["adversarial_fraction_outside"].items():
    if by_split:
      rows.append((f"Adversarial/flip points outside [{space}]",
                   ", ".join(f"{k}: {fmt(v)}" for k, v in by_split.items()),
                   "fraction of minimal adversarial examples and flip points certified outside"))
  for norm, by_eps in m["worst_case_robust_accuracy"].items():
    rows.append((f"Worst-case robust accuracy (L{norm})",
                 ", ".join(f"eps {k}: {fmt(v)}" for k, v in by_eps.items()),
                 "point-wise over all attacks"))
  for key, med in m["median_minimal_l2"].items():
    rows.append((f"Median minimal perturbation [{key}]", fmt(med),
                 "L2 norm of the smallest label-flipping perturbation, pixel units"))
  if m["ray_first_crossing"]:
    rows.append(("First boundary crossing along the ray", ", ".join(
        f"{k}: {fmt(v)}" for k, v in m["ray_first_crossing"].items()),
                 "ray from the hull projection (t=0) through the test sample (t=1)"))
  lh = m["linear_head"]
  if lh:
    rows.append(("Class hulls inside their own region",
                 f"{lh['classes_whose_hull_is_inside_their_region']} of "
                 f"{len(lh['class_min_margin'])}",
                 "penultimate features, linear head: min margin over each class hull > 0"))
    rows.append(("Test features nearer a boundary than the hull",
                 fmt(lh["fraction_boundary_closer_than_hull"]),
                 f"median boundary distance {fmt(lh['median_boundary_distance'])} vs "
                 f"median hull distance {fmt(lh['median_hull_distance'])}"))
  return rows
