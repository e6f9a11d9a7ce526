"""The findings paragraph at the top of a report: what the run's numbers, with their 95%
intervals, support and what they do not (generated; no hand-written conclusions).

  text = findings(intervals, error_prediction=an["error_prediction"], shift=an["shift"])

Rules (each sentence names its number and interval):
- outside the hull: supported in a space when the interval of the certified-outside fraction lies
  above 95%; "most" when above 50%; otherwise the run does not show it;
- the hull nearer than the nearest training point: when the median d_hull/d_NN interval lies
  below 1;
- a score predicts errors or detects a shift: when its AUROC interval lies above 0.5; it beats a
  baseline only when its interval lies above the baseline's (overlapping intervals: not shown);
  for errors the class-hull margin (it uses the true label) is not a candidate;
- one seed: the intervals cover the test sample only, so nothing is claimed about other seeds.
"""

from typing import Mapping, Optional

from tfhull.report import names
from tfhull.report.html import fmt
from tfhull.report.html import pct

_BASELINES = ("knn", "max_softmax")
_SETS = {"shuffled_pixels": "shuffled pixels", "random_pixels": "random pixels",
         "gaussian": "Gaussian noise", "held_out_classes": "classes left out of training"}
_BASELINE_NAMES = {"knn": "the k-NN feature distance", "max_softmax": "max-softmax"}
_SCORE_NAMES = {"d_hull": "d_hull", "d_hull_over_d_nn": "d_hull/d_NN",
                "class_hull_margin": "the class-hull margin"}


def _iv(iv: Mapping, frac: bool) -> str:
  f = pct if frac else fmt
  return f"{f(iv['estimate'])} [{f(iv['low'])}, {f(iv['high'])}]"


def _space(space: str, dims) -> str:
  return names.space_name(space, (dims or {}).get(space))


def _auroc_findings(res: Optional[Mapping], what: str, dims, exclude=()) -> list:
  """Sentences on one AUROC table (error prediction or one shifted set); scores in `exclude`
  are not candidates for the best hull score."""
  if not res or not res.get("auroc"):
    return []
  auroc, interval = res["auroc"], res.get("interval") or {}
  hull = {k: v for k, v in auroc.items()
          if "/" in k and v is not None and k.rpartition("/")[2] not in exclude}
  if not hull:
    return []
  best = max(hull, key=hull.get)
  space, _, score = best.rpartition("/")
  low, high = interval.get(best) or (None, None)
  label = f"{_SCORE_NAMES.get(score, score)} ({_space(space, dims)})"
  text = f"AUROC {fmt(auroc[best], 2)}" + (f" [{fmt(low, 2)}, {fmt(high, 2)}]" if low is not None
                                           else "")
  if low is None:
    return [f"The best hull score for {what}, {label}, has {text}; without an interval the run "
            "does not show it beats chance."]
  if low <= 0.5:
    return [f"The run does not show that the hull scores {what} better than chance (best: "
            f"{label}, {text})."]
  out = f"The hull scores {what} better than chance (best: {label}, {text})"
  better, not_better = [], []
  for b in _BASELINES:
    if auroc.get(b) is None or not interval.get(b):
      continue
    b_low, b_high = interval[b]
    name = f"{_BASELINE_NAMES[b]} ({fmt(auroc[b], 2)} [{fmt(b_low, 2)}, {fmt(b_high, 2)}])"
    if low > b_high:
      better.append(name)
    elif high < b_low:
      not_better.append(f"{name}, which is better")
    else:
      not_better.append(name)
  if better:
    out += f", and better than {' and '.join(better)}"
  if not_better:
    out += f"; the run does not show it beats {' or '.join(not_better)}"
  return [out + "."]


def findings(intervals: Mapping, *, error_prediction: Optional[Mapping] = None,
             shift: Optional[Mapping] = None, dims: Optional[Mapping] = None) -> str:
  """The findings paragraph (a few sentences) of one study or of several seeds' studies."""
  out = []
  seeds = max([v.get("seeds", 1) for v in _leaves(intervals)] or [1])
  outside = intervals.get("test_fraction_outside") or {}
  all_out = [s for s, iv in outside.items() if iv["low"] >= 0.95]
  most = [s for s, iv in outside.items() if 0.5 < iv["low"] < 0.95]
  for group, phrase in ((all_out, "nearly every test point (interval above 95%) lies outside "
                         "the training hull"), (most, "most test points lie outside the "
                                                "training hull")):
    if group:
      out.append(f"The run supports that {phrase} in " + ", ".join(
          f"{_space(s, dims)} ({_iv(outside[s], True)})"
          for s in sorted(group, key=names.space_key)) + ".")
  rest = [s for s in outside if s not in all_out and s not in most]
  if rest:
    out.append("It does not show that test points lie outside the hull in " + ", ".join(
        f"{_space(s, dims)} ({_iv(outside[s], True)})" for s in sorted(rest, key=names.space_key))
        + ".")
  ratio = intervals.get("median_dhull_over_dnn") or {}
  below = [s for s, iv in ratio.items() if iv["high"] < 1]
  if below:
    out.append("The hull is nearer than the nearest training point (median d_hull/d_NN below 1) "
               "in " + ", ".join(f"{_space(s, dims)} ({_iv(ratio[s], False)})"
                                 for s in sorted(below, key=names.space_key))
               + ": the test points are outside, but close to the hull relative to the sample "
               "spacing.")
  acc = intervals.get("test_accuracy")
  if acc:
    out.append(f"Test accuracy is {_iv(acc, True)}.")
  # The error table's class-hull margin uses the true label (a diagnostic, not a predictor).
  out += _auroc_findings(error_prediction, "predict the model's errors", dims,
                         exclude=("class_hull_margin",))
  for name, res in ((shift or {}).get("sets") or {}).items():
    out += _auroc_findings(res, f"detect shifted inputs ({_SETS.get(name, name)})", dims)
  if seeds > 1:
    out.append(f"Intervals (in brackets, 95%) resample {seeds} model seeds and the test samples; "
               f"with {seeds} seeds the seed part is coarse.")
  else:
    out.append("Intervals (in brackets, 95%) resample the test samples of one trained model: "
               "the run says nothing about other training seeds (rerun with --seeds).")
  return "Findings: " + " ".join(out)


def _leaves(d: Mapping) -> list:
  out = []
  for v in d.values():
    if isinstance(v, Mapping) and "estimate" in v:
      out.append(v)
    elif isinstance(v, Mapping):
      out += _leaves(v)
  return out
