"""Figures and page of the 2-D boundary-extension study (`tfhull.studies.toy2d`)."""

import numpy as np

from tfhull.report import figures
from tfhull.report import html


def regions_grid(labels, extent, polygon, x_train, y_train, row_names, col_names, ok, *,
                 name, title, caption):
  """Panels of predicted classes over the window (rows x columns), with the hull polygon and the
  training points; `ok` (rows, cols) marks interpolating models."""
  rows, cols = labels.shape[:2]
  side = int(round(np.sqrt(labels.shape[2])))
  fig = figures._figure(2.6 * cols + 0.5, 2.5 * rows + 0.6)  # pylint: disable=protected-access
  axes = fig.subplots(rows, cols, squeeze=False)
  for i in range(rows):
    for j in range(cols):
      ax = axes[i, j]
      ax.imshow(labels[i, j].reshape(side, side), origin="lower", extent=extent, cmap="Pastel1",
                vmin=0, vmax=8, interpolation="nearest", aspect="auto")
      ax.scatter(x_train[:, 0], x_train[:, 1], c=y_train, cmap="Set1", vmin=0, vmax=8, s=4,
                 linewidths=0)
      ax.plot(polygon[:, 0], polygon[:, 1], "k-", lw=1.2)
      flag = "" if ok[i, j] else " (not interpolating)"
      ax.set_title(f"{row_names[i]}, {col_names[j]}{flag}", fontsize=figures.FONT - 1)
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle(title, fontsize=figures.FONT + 2)
  return figures.Plot(name, title, caption, figures._png(fig))  # pylint: disable=protected-access


def regions_figure(result, x_train, y_train):
  """Decision regions of every (width, regime) model over the window, hull polygon drawn."""
  return regions_grid(
      result.labels, result.extent, result.polygon, x_train, y_train,
      [f"width {w}" for w in result.widths], list(result.regimes),
      result.train_accuracy == 1.0, name="regions",
      title="Decision regions inside and outside the training hull (black polygon)",
      caption="Rows: width; columns: training regime. Each panel colours the window (several "
      "times the training data's extent) by the predicted class, with the training points and "
      "the convex hull of the training set; models that agree on every training point may "
      "partition the space outside the hull very differently.")


def disagreement_figure(result):
  """Mean pairwise disagreement inside vs outside the hull, by width and by regime."""
  fig = figures._figure(10.0, 3.8)  # pylint: disable=protected-access
  ax0, ax1 = fig.subplots(1, 2)
  widths = list(result.disagreement_by_width)
  for key, style in (("inside", "o-"), ("outside", "s--")):
    ax0.plot(result.params, [result.disagreement_by_width[w][key] or np.nan for w in widths],
             style, label=f"{key} the hull")
  ax0.set_xscale("log")
  figures._style(ax0, title="Across regimes, per width", xlabel="parameters (log scale)",  # pylint: disable=protected-access
                 ylabel="fraction of grid points where models disagree")
  names = list(result.disagreement_by_regime)
  x = np.arange(len(names))
  for k, (key, off) in enumerate((("inside", -0.2), ("outside", 0.2))):
    ax1.bar(x + off, [result.disagreement_by_regime[n][key] or 0 for n in names], 0.4,
            label=f"{key} the hull", color=f"C{k}")
  ax1.set_xticks(x, names, rotation=20, fontsize=figures.FONT - 1)
  figures._style(ax1, title="Across widths, per regime", xlabel="regime",  # pylint: disable=protected-access
                 ylabel="fraction of grid points where models disagree")
  for ax in (ax0, ax1):
    ax.legend(fontsize=figures.FONT - 1)
  return figures.Plot(
      "disagreement", "Where interpolating models disagree",
      "Mean fraction of grid points on which two interpolating models predict different classes, "
      "inside the training hull and outside it: left, between regimes at the same width; right, "
      "between widths under the same regime.", figures._png(fig))  # pylint: disable=protected-access


INTRO = (
    "This page trains small multilayer perceptrons of several widths under several training "
    "regimes on one 2-D dataset, each until it classifies every training point correctly (or "
    "its epoch budget runs out), and colours a window several times the data's extent by each "
    "model's predicted class. Inside the convex hull of the training points (black polygon) a "
    "model interpolates; outside it, it extrapolates. Two models that both fit the training set "
    "agree on every training point; the page measures on what share of the window they still "
    "disagree, inside the hull and outside it.")


def _compare(by_key: dict) -> tuple:
  """({key: d}) -> (keys where outside > inside, keys where not, keys without both values)."""
  more, less, none = [], [], []
  for k, d in by_key.items():
    if d["inside"] is None or d["outside"] is None:
      none.append(k)
    elif d["outside"] > d["inside"]:
      more.append(k)
    else:
      less.append(k)
  return more, less, none


def _verdict(by_key: dict, what: str, plural: str) -> str:
  """One sentence: outside > inside for all, none or some (a mixed result) of the keys."""
  more, less, none = _compare(by_key)
  judged = len(more) + len(less)
  names = lambda ks: ", ".join(str(k) for k in ks)
  if not judged:
    return (f"No {what} has two models that fit the training set, so no disagreement is "
            "measured")
  if not less:
    text = (f"At every {what} measured ({names(more)}) the models disagree more outside the "
            "hull than inside")
  elif not more:
    text = (f"At no {what} measured do the models disagree more outside the hull than inside "
            f"({names(less)})")
  else:
    text = (f"Mixed: the models disagree more outside the hull than inside for {len(more)} of "
            f"{judged} {plural} ({names(more)}), not for {names(less)}")
  if none:
    text += f"; not measured for {names(none)} (fewer than two models fit the training set)"
  return text


def statement(result) -> str:
  """What the numbers say: how many models fit the training set, and where they disagree."""
  ok = np.asarray(result.train_accuracy) == 1.0
  total, fit = ok.size, int(ok.sum())
  if fit == total:
    first = f"Every one of the {total} models fits the training set"
  else:
    missing = [f"width {result.widths[i]} / {result.regimes[j]}"
               for i, j in zip(*np.nonzero(~ok))]
    first = (f"{fit} of {total} models fit the training set; the others ("
             f"{', '.join(missing)}, marked 'not interpolating') are left out of the "
             "disagreement")
  low = lambda text: text[0].lower() + text[1:]
  return (f"{first}. Between regimes at the same width: "
          f"{low(_verdict(result.disagreement_by_width, 'width', 'widths'))}. Between widths "
          f"under the same regime: "
          f"{low(_verdict(result.disagreement_by_regime, 'regime', 'regimes'))}.")


def write_toy2d_report(result, x_train, y_train, out_dir, *, title, metrics,
                       **page) -> dict:
  headline = []
  for w, d in result.disagreement_by_width.items():
    headline.append((f"width {w}: disagreement between regimes",
                     f"inside {_f(d['inside'])}, outside {_f(d['outside'])}",
                     "share of the grid where two models that fit the training set differ, "
                     "mean over pairs"))
  for r, d in result.disagreement_by_regime.items():
    headline.append((f"{r}: disagreement between widths",
                     f"inside {_f(d['inside'])}, outside {_f(d['outside'])}",
                     "share of the grid where two models that fit the training set differ, "
                     "mean over pairs"))
  text = statement(result)
  inside = np.asarray(result.inside, bool)
  section = html.Section(
      "toy2d", "Boundaries outside the hull",
      "The figures show where the models' decision regions differ.",
      headline=f"The training hull covers {html.pct(inside.mean())} of the window; "
      f"{len(result.pairs)} pairs of models that fit the training set are compared, "
      f"{html.pct(_mean_of(result.pairs, 'inside'))} of the grid inside the hull and "
      f"{html.pct(_mean_of(result.pairs, 'outside'))} outside it differing on average.")
  section.add(regions_figure(result, x_train, y_train), "regions skipped")
  section.add(disagreement_figure(result), "disagreement skipped: fewer than two interpolating "
              "models")
  return html.write_page(out_dir, [section], title=title, headline=headline, metrics=metrics,
                         intro=INTRO, summary=text, **page)


def _mean_of(pairs, key):
  vals = [p[key] for p in pairs if p.get(key) is not None]
  return float(np.mean(vals)) if vals else None


def _f(v):
  return "n/a" if v is None else html.pct(v)
