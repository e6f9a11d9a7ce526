"""The study's headline numbers and summary table, defined once for the study report and the
sweep page (plain dicts in: step summaries and analysis.json).

  m = study_metrics(train_summary, attack_summary, {(space, split): hull_summary}, analysis)
  rows = headline_rows(m)     # [(quantity, value, meaning)]
"""

from typing import Mapping, Optional, Tuple

from tfhull.report import names
from tfhull.report.html import fmt
from tfhull.report.html import pct


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
      "error_prediction": analysis.get("error_prediction"),
  }


def _space(space: str, dims: Optional[Mapping[str, int]]) -> str:
  return names.space_name(space, (dims or {}).get(space))


def _by_space(d: Mapping[str, object]) -> list:
  return sorted(d.items(), key=lambda kv: names.space_key(kv[0]))


def summary_sentence(m: dict, dims: Optional[Mapping[str, int]] = None) -> str:
  """One sentence of the study's headline numbers (above the summary table)."""
  parts = [f"The model ({m['params']:,} parameters) classifies {pct(m['train_accuracy'])} of "
           f"the training set and {pct(m['test_accuracy'])} of the test set correctly"]
  outside = {_space(s, dims): v for s, v in _by_space(m["test_fraction_outside"])}
  if outside:
    vals = [v for v in outside.values() if v is not None]
    if vals and pct(min(vals)) == pct(max(vals)):
      where = "in every space" if len(vals) > 1 else f"in {next(iter(outside))}"
      parts.append(f"{pct(vals[0])} of the test points are certified outside the training hull "
                   f"{where}")
    elif vals:
      lo = min(outside.items(), key=lambda kv: kv[1] if kv[1] is not None else 2)
      hi = max(outside.items(), key=lambda kv: kv[1] if kv[1] is not None else -1)
      parts.append(f"between {pct(lo[1])} ({lo[0]}) and {pct(hi[1])} ({hi[0]}) of the test "
                   "points are certified outside the training hull")
  adv = (m.get("minimal_perturbation_vs_hull") or {})
  for norm in sorted(adv, key=names.norm_key):
    r = adv[norm].get("spearman_d_hull")
    below = adv[norm].get("fraction_below_d_hull")
    if r is not None and below is not None:
      parts.append(f"minimal PGD ({names.norm_name(norm)}) flips {pct(below)} of the samples by "
                   f"less than their distance to the hull (rank correlation with d_hull "
                   f"{fmt(r, 2)})")
  return "; ".join(parts) + "."


def headline_rows(m: dict, dims: Optional[Mapping[str, int]] = None) -> list:
  """The summary table [(quantity, value, meaning)] of `study_metrics`: human names of spaces
  and query sets, one order (`tfhull.report.names`), fractions as percentages."""
  rows = [
      ("Parameters", f"{m['params']:,}", f"{fmt(m['params_per_example'])} per training "
       f"example, {fmt(m['params_per_constraint'])} per constraint (n x classes)"),
      ("Training accuracy", pct(m["train_accuracy"]),
       f"after {m['epochs_run']} epochs; 100% means the model interpolates the training set"),
      ("Test accuracy", pct(m["test_accuracy"]), "on the clean test set"),
  ]
  for space, frac in _by_space(m["test_fraction_outside"]):
    rows.append((f"Test points outside the hull, {_space(space, dims)}", pct(frac),
                 f"certified outside; median d_hull "
                 f"{fmt(m['median_test_distance'][space])}, median d_hull/d_NN "
                 f"{fmt(m['median_dhull_over_dnn'].get(space))}"))
  for space, by_split in _by_space(m["adversarial_fraction_outside"]):
    if by_split:
      rows.append((f"Adversarial examples and flip points outside the hull, "
                   f"{_space(space, dims)}",
                   ", ".join(f"{names.split_name(k)}: {pct(v)}" for k, v in
                             sorted(by_split.items(), key=lambda kv: names.split_key(kv[0]))),
                   "certified outside the training hull"))
  for norm, by_eps in sorted(m["worst_case_robust_accuracy"].items(),
                             key=lambda kv: names.norm_key(kv[0])):
    rows.append((f"Worst-case robust accuracy ({names.norm_name(norm)})",
                 ", ".join(f"eps {k}: {pct(v)}" for k, v in by_eps.items()),
                 "point-wise over all attacks"))
  for key, med in sorted(m["median_minimal_l2"].items(),
                         key=lambda kv: names.minimal_key_order(kv[0])):
    rows.append((f"Median minimal perturbation, {names.minimal_key_name(key)}", fmt(med),
                 "L2 norm of the smallest label-flipping perturbation, pixel units"))
  adv = m.get("minimal_perturbation_vs_hull") or {}
  for norm in sorted(adv, key=names.norm_key):
    r = adv[norm].get("spearman_d_hull")
    rows.append((f"Minimal perturbation vs d_hull, minimal PGD ({names.norm_name(norm)})",
                 f"rank correlation {fmt(r, 2)}",
                 f"Spearman over {adv[norm].get('samples', 'n/a')} flipped samples; "
                 f"{pct(adv[norm].get('fraction_below_d_hull'))} are flipped by less than their "
                 "pixel-space d_hull"))
  if m["ray_first_crossing"]:
    rows.append(("First boundary crossing along the ray", ", ".join(
        f"{k}: {pct(v)}" for k, v in m["ray_first_crossing"].items()),
                 "ray from the hull projection (t=0) through the test sample (t=1)"))
  lh = m["linear_head"]
  if lh:
    # The class-hull-in-region count is not a headline (automatic at 100% training accuracy):
    # the boundary-geometry section shows it with its margin distribution and caveat.
    rows.append(("Test features nearer a boundary than the hull",
                 pct(lh["fraction_boundary_closer_than_hull"]),
                 f"median boundary distance {fmt(lh['median_boundary_distance'])} vs "
                 f"median hull distance {fmt(lh['median_hull_distance'])}"))
  rows += _error_rows(m.get("error_prediction"), dims)
  return rows


_SCORES = {"d_hull": "d_hull", "d_hull_over_d_nn": "d_hull/d_NN",
           "class_hull_margin": "class-hull margin (true label)",
           "max_softmax": "1 - max softmax", "knn": "k-NN feature distance"}


def _error_rows(ep: Optional[dict], dims) -> list:
  """Summary rows: AUROC (95% interval) of each score for the model's test errors."""
  if not ep or not ep.get("errors"):
    return []
  by_space = {}
  for r in ep["rows"]:
    if r["auroc"] is None:
      continue
    low, high = r["interval"] or (None, None)
    by_space.setdefault(r["space"], []).append(
        f"{_SCORES.get(r['score'], r['score'])} {fmt(r['auroc'], 2)}"
        + (f" ({fmt(low, 2)}-{fmt(high, 2)})" if low is not None else ""))
  what = (f"AUROC (95% bootstrap interval) for the {ep['errors']} misclassified of "
          f"{ep['samples']} test samples; 0.5 is chance")
  rows = []
  for space, items in sorted(by_space.items(), key=lambda kv: names.space_key(kv[0])):
    title = ("Error prediction, baselines" if space == "-" else
             f"Error prediction, {_space(space, dims)}")
    rows.append((title, ", ".join(items), what + (f"; k = {ep['k']}" if space == "-" and
                                                   ep.get("k") else "")))
  return rows
