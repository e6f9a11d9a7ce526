"""95% intervals of the headline numbers: the study report's "Intervals" section and the page of a
run over several seeds (`--seeds`).

  rows = interval_rows(intervals, dims)   # [(quantity, estimate, 95% interval, over)]
  section = interval_section(intervals, dims)
  write_seeds_report(seeds, per_seed_metrics, intervals, out_dir, title=..., **page)

`intervals` is `tfhull.study.seeds.headline_intervals`: the nesting of `study_metrics`, one
interval dict (estimate, low, high, statistic, seeds, samples, per_seed) per number.
"""

from typing import Mapping, Optional, Sequence

import numpy as np

from tfhull.report import figures
from tfhull.report import findings
from tfhull.report import html
from tfhull.report import names

# metric -> (title, is a fraction, meaning); sub-keyed metrics name their key in the title.
_METRICS = (
    ("test_accuracy", "Test accuracy", True, "clean test set"),
    ("test_fraction_outside", "Test points outside the hull, {}", True, "certified outside"),
    ("median_test_distance", "Median d_hull of the test points, {}", False, "L2, that space"),
    ("median_dhull_over_dnn", "Median d_hull/d_NN of the test points, {}", False,
     "< 1: the hull is nearer than the nearest training point"),
    ("median_minimal_l2", "Median minimal perturbation, {}", False,
     "L2 norm, flipped samples that were classified correctly"),
    ("worst_case_robust_accuracy", "Worst-case robust accuracy, {}", True,
     "point-wise over all attacks"),
    ("ray_first_crossing", "First crossing along the ray: {}", True,
     "fraction of test samples"),
)


def _sub_name(metric: str, key: str, dims) -> str:
  if metric in ("test_fraction_outside", "median_test_distance", "median_dhull_over_dnn"):
    return names.space_name(key, (dims or {}).get(key))
  if metric == "median_minimal_l2":
    return names.minimal_key_name(key)
  if metric == "worst_case_robust_accuracy":
    norm, eps = key.split("/", 1)
    return f"{names.norm_name(norm)}, eps {eps}"
  return key


def _sub_order(metric: str, key: str):
  if metric in ("test_fraction_outside", "median_test_distance", "median_dhull_over_dnn"):
    return names.space_key(key)
  if metric == "median_minimal_l2":
    return names.minimal_key_order(key)
  if metric == "worst_case_robust_accuracy":
    norm, eps = key.split("/", 1)
    return (names.norm_key(norm), float(eps))
  return ()


def flat(intervals: Mapping, dims: Optional[Mapping] = None) -> list:
  """[(metric, sub key or None, title, is_fraction, meaning, interval dict)] in report order."""
  out = []
  for metric, title, frac, meaning in _METRICS:
    v = intervals.get(metric)
    if not v:
      continue
    if "estimate" in v:
      out.append((metric, None, title, frac, meaning, v))
    else:
      for key in sorted(v, key=lambda k, m=metric: _sub_order(m, k)):
        out.append((metric, key, title.format(_sub_name(metric, key, dims)), frac, meaning,
                    v[key]))
  return out


def value(iv: Mapping, fraction: bool) -> str:
  return html.pct(iv["estimate"]) if fraction else html.fmt(iv["estimate"])


def span(iv: Mapping, fraction: bool) -> str:
  f = html.pct if fraction else html.fmt
  return f"{f(iv['low'])} to {f(iv['high'])}"


def over(iv: Mapping) -> str:
  if iv["seeds"] > 1:
    return f"{iv['seeds']} seeds x {iv['samples']} test samples (bootstrap over both)"
  return f"{iv['samples']} test samples (bootstrap; one seed: seed variation not included)"


def interval_rows(intervals: Mapping, dims: Optional[Mapping] = None) -> list:
  """[(quantity, estimate, 95% interval, over what)] of every headline interval."""
  return [(title, value(iv, frac), span(iv, frac), over(iv) + f"; {meaning}")
          for _, _, title, frac, meaning, iv in flat(intervals, dims)]


def interval_section(intervals: Mapping, dims: Optional[Mapping] = None) -> html.Section:
  """The study report's section: the headline numbers with their 95% intervals."""
  s = html.Section("intervals", "Headline numbers with 95% intervals",
                   "Each number with its 95% percentile-bootstrap interval over the test samples "
                   "(the statistic recomputed on resampled test sets). The interval is about the "
                   "finite test set only: a model trained with another seed can differ by more "
                   "(`--seeds` repeats the study and widens the interval over seeds).")
  rows = interval_rows(intervals, dims)
  if rows:
    s.tables.append(html.Table("Headline numbers and their 95% intervals",
                               ("quantity", "estimate", "95% interval", "over"), rows,
                               name="intervals"))
  else:
    s.skipped.append("Intervals skipped: no per-sample values were found.")
  return s


def seeds_figure(intervals: Mapping, dims: Optional[Mapping] = None) -> Optional[figures.Plot]:
  """Each fraction headline: every seed's value (dots) and the 95% interval (error bar)."""
  items = [x for x in flat(intervals, dims) if x[3]]
  if not items:
    return None
  fig = figures._figure(8.0, 0.35 * len(items) + 1.2)  # pylint: disable=protected-access
  ax = fig.subplots()
  y = np.arange(len(items))[::-1]
  for yi, (_, _, title, _, _, iv) in zip(y, items):
    ax.errorbar([iv["estimate"]], [yi], xerr=[[iv["estimate"] - iv["low"]],
                                              [iv["high"] - iv["estimate"]]],
                fmt="s", color="C0", capsize=3)
    ax.plot(iv["per_seed"], [yi] * len(iv["per_seed"]), "o", color="C1", alpha=0.6, ms=4)
  ax.set_yticks(y)
  ax.set_yticklabels([x[2] for x in items], fontsize=figures.FONT - 1)
  figures._style(ax, title="Headline fractions over seeds", xlabel="fraction",  # pylint: disable=protected-access
                 ylabel="")
  return figures.Plot(
      "seeds", "Headline fractions: each seed and the 95% interval",
      "Squares: the mean over seeds with its 95% interval (bootstrap over seeds and test "
      "samples); dots: each seed's own value.", figures._png(fig))  # pylint: disable=protected-access


def write_seeds_report(seeds: Sequence[int], intervals: Mapping, out_dir: str, *, title: str,
                       dims: Optional[Mapping] = None, reports: Sequence[str] = (),
                       **page) -> dict:
  """The page of a run over several seeds: the headline intervals, each seed's value, a figure.

  reports: each seed's study report (report.html), linked in the per-seed table's caption."""
  items = flat(intervals, dims)
  per_seed = [(title_, *[value({"estimate": v}, frac) for v in iv["per_seed"]])
              for _, _, title_, frac, _, iv in items if len(iv["per_seed"]) == len(seeds)]
  s = html.Section("seeds", f"The study over {len(seeds)} seeds",
                   "The model seed (initialisation, batch order, attack randomness) changes per "
                   "seed; the data and the seed-independent artifacts (pixel and Haar features "
                   "and their test-set hull distances) are shared. Each headline's interval "
                   "resamples the seeds and, within each, the test samples.")
  s.tables.append(html.Table(
      "Each seed's value" + (f" (study reports: {', '.join(reports)})" if reports else ""),
      ("quantity", *[f"seed {x}" for x in seeds]), per_seed, name="per_seed"))
  s.add(seeds_figure(intervals, dims), "seeds figure skipped: no fraction headline")
  headline = [(t, f"{v} ({sp})", o) for t, v, sp, o in interval_rows(intervals, dims)]
  return html.write_page(out_dir, [s], title=title, headline=headline,
                         metrics={"seeds": list(seeds), "intervals": intervals},
                         summary=findings.findings(intervals, dims=dims) + " Headline "
                         f"numbers over seeds {', '.join(map(str, seeds))}, with 95% intervals "
                         "in parentheses.", **page)
