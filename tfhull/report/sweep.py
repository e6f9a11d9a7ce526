"""A sweep's page: per grid point, parameters against accuracy, hull geometry, robustness and
boundary behaviour outside the hull.

  rows = [{"assignment": ..., "metrics": point_metrics(done, analysis)} for each point]
  write_sweep_report(rows, axes, out_dir, provenance=..., config=...)
"""

from typing import Optional, Sequence

import numpy as np

from tfhull.report import figures
from tfhull.report import html
from tfhull.report import names
from tfhull.report import study

# Ray categories in the order the analyses report them.
_RAYS = ("behind the hull boundary", "between hull and sample", "beyond the sample", "no crossing")


def point_metrics(done: dict, analysis: dict) -> dict:
  """The numbers of one grid point ({node key: Artifact} of its study and its analysis.json),
  from the same definitions as the study report (`tfhull.report.study.study_metrics`)."""
  hull = {(a.summary["space"], a.summary["split"]): a.summary for k, a in done.items()
          if k.startswith("hull/") and a.summary.get("kind", "global") == "global"}
  m = study.study_metrics(done["train"].summary, done["attack"].summary, hull, analysis)
  return {**{k: m[k] for k in ("params", "params_per_example", "params_per_constraint",
                               "train_accuracy", "test_accuracy", "epochs_run", "interpolated",
                               "test_fraction_outside", "median_dhull_over_dnn",
                               "median_test_distance", "clean_accuracy_attacked")},
          "median_minimal_l2": m["median_minimal_l2_headline"],
          "ray_categories": {k.split(" (")[0]: v for k, v in
                             (m["ray_first_crossing"] or {}).items()}}


def _label(assignment: dict, x_axis: Optional[str]) -> str:
  rest = {k: v for k, v in assignment.items() if k != x_axis}
  return ", ".join(f"{k}={v}" for k, v in rest.items()) or "sweep"


def _groups(rows: Sequence[dict], x_axis: Optional[str]):
  groups = {}
  for r in rows:
    groups.setdefault(_label(r["assignment"], x_axis), []).append(r)
  return {k: sorted(v, key=lambda r: r["metrics"]["params"]) for k, v in groups.items()}


def sweep_figure(rows: Sequence[dict], x_axis: Optional[str]) -> Optional[figures.Plot]:
  """Four panels against the parameter count (log scale), one line per group of the other axes."""
  if not rows:
    return None
  fig = figures._figure(12.0, 8.0)  # pylint: disable=protected-access
  axes = fig.subplots(2, 2)
  for i, (label, group) in enumerate(_groups(rows, x_axis).items()):
    m = [r["metrics"] for r in group]
    p = [x["params"] for x in m]
    color = f"C{i % 10}"
    axes[0, 0].plot(p, [x["train_accuracy"] for x in m], "o--", color=color,
                    label=f"{label}: train")
    _bars(axes[0, 0], p, m, "test_accuracy", None, "test_accuracy", "s-", color,
          f"{label}: test")
    for j, space in enumerate(sorted(m[0]["median_dhull_over_dnn"], key=names.space_key)):
      _bars(axes[0, 1], p, m, "median_dhull_over_dnn", space, None,
            ("o-", "s--", "^:", "d-.")[j % 4], color, f"{label}: {names.space_name(space)}")
    _bars(axes[1, 0], p, m, "median_minimal_l2", _minimal_key(m), "median_minimal_l2", "o-",
          color, label)
    for j, cat in enumerate(_RAYS[:3]):
      _bars(axes[1, 1], p, m, "ray_first_crossing", cat, None, ("o-", "s--", "^:")[j], color,
            f"{label}: {cat}")
  titles = (("Accuracy", "accuracy (fraction)"),
            ("Test samples vs the training hull", "median d_hull / d_NN (test)"),
            ("Adversarial vulnerability", "median minimal L2 perturbation"),
            ("First boundary crossing along the rays", "fraction of test samples"))
  for ax, (title, ylabel) in zip(axes.ravel(), titles):
    ax.set_xscale("log")
    figures._style(ax, title=title, xlabel="trainable parameters (log scale)", ylabel=ylabel)  # pylint: disable=protected-access
    ax.legend(fontsize=figures.FONT - 2)
  fig.suptitle("From under- to over-parameterized", fontsize=figures.FONT + 2)
  return figures.Plot(
      "sweep", "Sweep: parameters vs accuracy, hull geometry, robustness, boundaries",
      "Each point is one trained model of the sweep, placed by its parameter count. Top left: "
      "training and test accuracy (training accuracy 100% = interpolation). Top right: median ratio "
      "of the test samples' distance to the training hull over their distance to the nearest "
      "training sample, per space. Bottom left: median smallest label-flipping L2 perturbation. "
      "Bottom right: where the label first changes along the ray from the hull projection "
      "through each test sample (behind the hull boundary, between hull and sample, beyond it). "
      "Error bars: 95% bootstrap intervals over the test samples, and over the seeds when the "
      "sweep ran several (--seeds).",
      figures._png(fig))  # pylint: disable=protected-access


def _minimal_key(m: Sequence[dict]) -> str:
  """The minimal-perturbation key the headline uses (min_pgd/2, else cw_l2/2)."""
  keys = set().union(*[(x.get("intervals") or {}).get("median_minimal_l2", {}) for x in m])
  return "min_pgd/2" if "min_pgd/2" in keys or not keys else "cw_l2/2"


def _bars(ax, p, m, metric, sub, plain, style, color, label) -> None:
  """One line against the parameter count: each point's estimate with its 95% interval as an
  error bar where the point has one (`metrics["intervals"]`), else its plain value."""
  ys, lo, hi = [], [], []
  for x in m:
    iv = (x.get("intervals") or {}).get(metric)
    iv = iv.get(sub) if (iv and sub is not None) else iv
    if iv and iv.get("estimate") is not None:
      ys.append(iv["estimate"])
      lo.append(iv["estimate"] - iv["low"])
      hi.append(iv["high"] - iv["estimate"])
      continue
    if plain is not None:
      v = x.get(plain)
    elif metric == "ray_first_crossing":
      v = x["ray_categories"].get(sub, np.nan)
    else:
      v = x[metric].get(sub)
    ys.append(np.nan if v is None else v)
    lo.append(0.0)
    hi.append(0.0)
  ax.errorbar(p, ys, yerr=[lo, hi], fmt=style, color=color, label=label, capsize=2)


def curves_figure(rows: Sequence[dict]) -> Optional[figures.Plot]:
  """Training and test accuracy per epoch of every grid point (memorization sweeps)."""
  rows = [r for r in rows if r.get("history", {}).get("accuracy")]
  if not rows:
    return None
  fig = figures._figure(11.0, 4.0)  # pylint: disable=protected-access
  ax0, ax1 = fig.subplots(1, 2)
  for i, r in enumerate(rows):
    h, label = r["history"], ", ".join(f"{k}={v}" for k, v in r["assignment"].items())
    epochs = np.arange(1, len(h["accuracy"]) + 1)
    ax0.plot(epochs, h["accuracy"], color=f"C{i % 10}", label=label)
    if h.get("test_accuracy"):
      ax1.plot(epochs, h["test_accuracy"], color=f"C{i % 10}", label=label)
  figures._style(ax0, title="Training accuracy", xlabel="epoch", ylabel="accuracy (running, "  # pylint: disable=protected-access
                 "training labels)")
  figures._style(ax1, title="Test accuracy", xlabel="epoch", ylabel="accuracy (clean test set)")  # pylint: disable=protected-access
  for ax in (ax0, ax1):
    ax.set_xscale("log")
    ax.legend(fontsize=figures.FONT - 3)
  return figures.Plot(
      "sweep_curves", "Training curves of every grid point",
      "Accuracy per epoch (log scale) on the training labels (left; with label noise these are "
      "the noisy labels the model memorizes) and on the clean test set (right).",
      figures._png(fig))  # pylint: disable=protected-access


def write_sweep_report(rows: Sequence[dict], x_axis: Optional[str], out_dir: str, *,
                       title: str, **page) -> dict:
  """rows: [{"assignment": {flag: value}, "metrics": point_metrics(...)}]; writes report.html,
  report.md, metrics.json (the rows) and figures/ into out_dir."""
  headline = []
  for r in sorted(rows, key=lambda r: r["metrics"]["params"]):
    m = r["metrics"]
    ratio = ", ".join(f"{names.space_name(k)}: {v:.3g}" for k, v in
                      sorted(m["median_dhull_over_dnn"].items(),
                             key=lambda kv: names.space_key(kv[0])) if v is not None)
    minimal = m["median_minimal_l2"]
    acc = (m.get("intervals") or {}).get("test_accuracy")
    test = (f"{html.pct(acc['estimate'])} (95%: {html.pct(acc['low'])} to "
            f"{html.pct(acc['high'])}{', ' + str(acc['seeds']) + ' seeds' if acc['seeds'] > 1 else ''})"
            if acc else html.pct(m["test_accuracy"]))
    headline.append((", ".join(f"{k}={v}" for k, v in r["assignment"].items()),
                     f"{m['params']:,} params ({m['params_per_example']:.3g}/example); train "
                     f"{html.pct(m['train_accuracy'])}, test {test}",
                     f"median d_hull/d_NN {ratio}; median minimal L2 "
                     f"{'n/a' if minimal is None else f'{minimal:.3g}'}"))
  section = html.Section("sweep", "The sweep",
                         "One trained model per grid point, each through the full pipeline "
                         "(shared upstream artifacts come from the cache).")
  section.add(sweep_figure(rows, x_axis), "sweep figure skipped: no grid point finished")
  section.add(curves_figure(rows), "training curves skipped: no history")
  return html.write_page(
      out_dir, [section], title=title, headline=headline,
      metrics={"points": [{k: v for k, v in r.items() if k != "history"} for r in rows]}, **page)
