"""The report's figures: `matplotlib.figure.Figure` objects drawn on an Agg canvas, never pyplot.

Every function takes plain arrays and returns a `Plot` (file stem, title, caption, PNG bytes), or
None when its inputs are absent or empty. Output is deterministic: fixed sizes, fixed dpi, no
timestamp or software tag in the PNG. Distances are L2 in the coordinates of their space.
"""

import dataclasses
import io
import math
import re
from typing import Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
import numpy as np

from tfhull.report import names

DPI = 100
TEST_SPLIT = "test"
MAX_SUPPORT = 8
FONT = 9


@dataclasses.dataclass
class Plot:
  """One rendered figure."""
  name: str     # file stem, unique within a report: figures/<name>.png.
  title: str
  caption: str  # how to read it, one or two sentences.
  png: bytes


def slug(text: str) -> str:
  """A file-name-safe stem: "haar:1:top32" -> "haar_1_top32"."""
  return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def units(space: str) -> str:
  """The units of coordinates (and L2 distances) in `space`."""
  if space == "pixel":
    return "pixel units"
  if space.startswith("haar"):
    return "Haar coefficient units"
  if space.startswith("layer:"):
    return f"{space[len('layer:'):]} activation units"
  if space == "logits":
    return "logit units"
  return f"{space} units"


def distance_label(space: str) -> str:
  """Axis label of an L2 distance in `space`."""
  return f"L2 distance ({units(space)})"


def norm_name(norm: str) -> str:
  return names.norm_name(norm)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> Optional[float]:
  """Spearman's rank correlation (as tfhull.analysis computes it); None under 3 points."""
  if len(a) < 3:
    return None
  ra = np.argsort(np.argsort(a)).astype(np.float64)
  rb = np.argsort(np.argsort(b)).astype(np.float64)
  return float(np.corrcoef(ra, rb)[0, 1])


def spearman(entry: dict, ok: Optional[np.ndarray] = None) -> Optional[float]:
  """The rank correlation of an adversarial entry's perturbation with d_hull: the analysis's
  value ("spearman_d_hull") when given, else computed over the finite pairs (`ok`)."""
  if entry.get("spearman_d_hull") is not None:
    return float(entry["spearman_d_hull"])
  p, d = as_array(entry.get("perturbation")), as_array(entry.get("d_hull"))
  if p.size != d.size:
    return None
  ok = (np.isfinite(p) & np.isfinite(d)) if ok is None else ok
  return _rank_correlation(p[ok], d[ok])


def as_array(values) -> np.ndarray:
  """(n,) float64; None -> empty."""
  if values is None:
    return np.zeros(0)
  return np.asarray(values, dtype=np.float64).ravel()


def finite(values) -> np.ndarray:
  a = as_array(values)
  return a[np.isfinite(a)]


def _figure(width: float, height: float, layout: Optional[str] = "constrained") -> Figure:
  fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
  FigureCanvasAgg(fig)
  return fig


def _grid(fig: Figure, n: int, max_cols: int = 3):
  """(axes used, ) for n panels in rows of max_cols; the unused ones are switched off."""
  cols = min(n, max_cols)
  axes = fig.subplots(math.ceil(n / cols), cols, squeeze=False).ravel()
  for ax in axes[n:]:
    ax.set_axis_off()
  return axes[:n]


def _png(fig: Figure) -> bytes:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
  return buf.getvalue()


def _style(ax, *, title: str, xlabel: str, ylabel: str) -> None:
  ax.set_title(title, fontsize=FONT + 1)
  ax.set_xlabel(xlabel, fontsize=FONT)
  ax.set_ylabel(ylabel, fontsize=FONT)
  ax.tick_params(labelsize=FONT - 1)
  ax.grid(alpha=0.3)


def _diagonal(ax, x: np.ndarray, y: np.ndarray) -> None:
  """Dashed y = x over the data range (from 0), with equal limits on both axes."""
  top = max(1e-12, *(float(a.max()) for a in (x, y) if a.size)) * 1.05
  ax.plot([0, top], [0, top], "k--", lw=1, label="y = x")
  ax.set_xlim(0, top)
  ax.set_ylim(0, top)


def _cdf(ax, values, **kw) -> None:
  """Empirical CDF (step) of the finite values."""
  x = np.sort(finite(values))
  if x.size:
    ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", **kw)


# 1. Training curves.


def training_curves(history: dict) -> Optional[Plot]:
  """Loss and accuracy per epoch, train (solid) vs test (dashed); None without any curve."""
  history = history or {}
  panels = [("loss", "cross-entropy loss (nats)", ("loss", "test_loss")),
            ("accuracy", "accuracy (fraction correct)", ("accuracy", "test_accuracy"))]
  panels = [p for p in panels if any(as_array(history.get(k)).size for k in p[2])]
  if not panels:
    return None
  fig = _figure(4.4 * len(panels), 3.3)
  for ax, (what, ylabel, keys) in zip(_grid(fig, len(panels)), panels):
    for key, style, label in zip(keys, ("-", "--"), ("train", "test")):
      v = as_array(history.get(key))
      if v.size:
        ax.plot(np.arange(1, v.size + 1), v, style, marker="o" if v.size <= 30 else None, ms=3,
                label=label)
    _style(ax, title=what, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=FONT - 1)
  fig.suptitle("Training curves", fontsize=FONT + 2)
  return Plot("training_curves", "Training curves",
              "Loss (left) and accuracy (right) after each epoch on the training set (solid) and "
              "the clean test set (dashed); training accuracy reaching 100% marks interpolation.",
              _png(fig))


# 2-4. Hull distances.


_LINESTYLES = ("-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _coincides(a: Sequence, b: Sequence, rtol: float) -> bool:
  """Whether two curves, each a sequence of arrays in the same order (a view's d_hull and d_NN;
  an attack's eps and robust accuracy), agree element-wise within `rtol`."""
  pairs = [(as_array(x), as_array(y)) for x, y in zip(a, b)]
  return (len(pairs) == len(a) == len(b) > 0 and pairs[0][0].size > 0
          and all(x.size == y.size and np.allclose(x, y, rtol=rtol, atol=0, equal_nan=True)
                  for x, y in pairs))


def coincidence_note(curve: Sequence, earlier: Sequence[tuple[str, Sequence]]) -> str:
  """For a legend label: "; identical to NAME" when `curve` equals an earlier (name, curve)'s
  (within 1e-6), "; within 1% of NAME" when it is that close, else "" (see `_coincides`)."""
  for rtol, words in ((1e-6, "identical to"), (0.01, "within 1% of")):
    same = [name for name, other in earlier if _coincides(other, curve, rtol)]
    if same:
      return f"; {words} {same[0]}"
  return ""


def hull_distances(space: str, views: Sequence, name: str,
                   dim: Optional[int] = None) -> Optional[Plot]:
  """CDFs of d_hull, d_NN and d_hull/d_NN of one space's views (HullView, test split first).

  Each query set has its own colour, line style and markers, so curves lying on top of each
  other stay visible; a set whose distances equal an earlier one's says so in the legend."""
  if not views:
    return None
  shown = names.space_name(space, dim)
  fig = _figure(13, 4.2)
  axes = _grid(fig, 3)
  for i, v in enumerate(views):
    d, nn = as_array(v.distance), as_array(v.nearest_distance)
    ratio = np.divide(d, nn, out=np.full_like(d, np.nan), where=nn > 0)
    outside = np.asarray(v.outside, dtype=bool).ravel()
    pct = 100 * outside.mean() if outside.size else float("nan")
    label = f"{names.split_name(v.split)} (n={d.size}, {pct:.0f}% certified outside)"
    label += coincidence_note((v.distance, v.nearest_distance),
                              [(names.split_name(u.split), (u.distance, u.nearest_distance))
                               for u in views[:i]])
    kw = dict(color=f"C{i % 10}", lw=2.4 if v.split == TEST_SPLIT else 1.4,
              ls=_LINESTYLES[i % len(_LINESTYLES)], marker=_MARKERS[i % len(_MARKERS)], ms=4,
              markevery=(i % 5 / 50, 0.1), label=label, zorder=10 - i)
    for ax, values in zip(axes, (d, nn, ratio)):
      _cdf(ax, values, **kw)
  ylabel = "fraction of queries ≤ x"
  _style(axes[0], title="distance to the training hull, d_hull", xlabel=distance_label(space),
         ylabel=ylabel)
  _style(axes[1], title="distance to the nearest training point, d_NN",
         xlabel=distance_label(space), ylabel=ylabel)
  _style(axes[2], title="ratio d_hull / d_NN", xlabel="d_hull / d_NN (unitless)", ylabel=ylabel)
  axes[2].axvline(1.0, color="gray", ls=":", lw=1)
  for ax in axes:
    ax.set_ylim(0, 1.02)
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="outside lower center", ncols=min(2, max(1, len(labels))),
             fontsize=FONT - 1)
  fig.suptitle(f"{shown}: distances of the queries to the training set", fontsize=FONT + 2)
  splits = ", ".join(names.split_name(v.split) for v in views)
  return Plot(name, f"Distances to the training set in {shown}",
              f"Empirical CDFs over the queries ({splits}) of the certified distance to the "
              "training hull (left), the distance to the nearest training point (middle) and their "
              "ratio (right): a curve further right is farther from the training data, and a ratio "
              "well below 1 means the hull reaches much closer than any single training point. "
              "Line styles and markers tell overlapping curves apart; the legend says which "
              "query sets coincide (query by query, within 1%).",
              _png(fig))


def nnz_histograms(views: Sequence, dims: Optional[dict] = None) -> Optional[Plot]:
  """Histogram of the projection's support size, one panel per view (one view per space)."""
  dims = dims or {}
  views = [v for v in views if finite(v.nnz).size]
  if not views:
    return None
  cols = min(len(views), 3)
  fig = _figure(4.3 * cols, 3.2 * math.ceil(len(views) / cols))
  for ax, v in zip(_grid(fig, len(views)), views):
    k = finite(v.nnz).astype(np.int64)
    lo, hi = int(k.min()), int(k.max())
    bins = np.arange(lo, hi + 2) - 0.5 if hi - lo <= 60 else 40
    ax.hist(k, bins=bins, color="C0", edgecolor="white", linewidth=0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax, title=f"{names.space_name(v.space, dims.get(v.space))}\n"
           f"{names.split_name(v.split)}, median {np.median(k):g}",
           xlabel="training points in the projection (nnz)", ylabel="queries")
  fig.suptitle("Support size of the hull projections", fontsize=FONT + 2)
  return Plot("nnz", "Support size of the hull projections",
              "How many training points carry weight in each query's projection onto the "
              "training hull, per space; few points means the nearest part of the hull is a "
              "low-dimensional face spanned by a handful of training samples.", _png(fig))


def class_hull_scatter(views: Sequence, dims: Optional[dict] = None) -> Optional[Plot]:
  """Own-class vs nearest-other-class hull distance, one panel per view that has both."""
  dims = dims or {}
  views = [v for v in views
           if v.own_class_distance is not None and v.nearest_other_class_distance is not None
           and as_array(v.own_class_distance).size]
  if not views:
    return None
  cols = min(len(views), 3)
  fig = _figure(5.0 * cols, 4.2 * math.ceil(len(views) / cols))
  for ax, v in zip(_grid(fig, len(views)), views):
    x, y = as_array(v.own_class_distance), as_array(v.nearest_other_class_distance)
    w = as_array(v.own_class_weight) if v.own_class_weight is not None else None
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if w is not None and w.size == ok.size:
      sc = ax.scatter(x, y, s=9, c=w[ok], cmap="viridis", vmin=0, vmax=1, linewidths=0)
      cb = ax.figure.colorbar(sc, ax=ax, shrink=0.85)
      cb.set_label("projection weight on own class (fraction)", fontsize=FONT - 1)
      cb.ax.tick_params(labelsize=FONT - 1)
    else:
      ax.scatter(x, y, s=9, color="C0", linewidths=0)
    _diagonal(ax, x, y)
    closer = 100 * np.mean(x < y) if x.size else float("nan")
    _style(ax, title=f"{names.space_name(v.space, dims.get(v.space))}\n"
           f"{names.split_name(v.split)}: {closer:.0f}% closer to own class",
           xlabel=f"to own-class hull (L2, {units(v.space)})",
           ylabel=f"to nearest other-class hull (L2, {units(v.space)})")
    ax.legend(fontsize=FONT - 1, loc="lower right")
  fig.suptitle("Own-class vs nearest other-class hull", fontsize=FONT + 2)
  return Plot("class_hulls", "Own-class vs nearest other-class hull distance",
              "Each dot is a query: its distance to the hull of its own class (x) against the "
              "nearest hull of another class (y); dots above the diagonal are closer to their own "
              "class, and the colour (when given) is the projection weight on the own class.",
              _png(fig))


# 5. Image rows.


def _hwc(image) -> np.ndarray:
  a = np.asarray(image, dtype=np.float64)
  return a[..., None] if a.ndim == 2 else a


def _show(ax, image: np.ndarray, title: str) -> None:
  if image.shape[-1] == 1:
    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
  else:
    ax.imshow(np.clip(image[..., :3], 0, 1), interpolation="nearest")
  ax.set_title(title, fontsize=FONT - 1)


def image_rows(rows: Sequence) -> Optional[Plot]:
  """Per ImageRow: test | projection | residual | the highest-weight training images."""
  if not rows:
    return None
  k = max(min(len(r.support), MAX_SUPPORT) for r in rows)
  ncols, nrows = 3 + k, len(rows)
  # Inches: each row's two-line panel titles sit in the gap above it; the suptitle gets its own
  # band above the first row's titles (it used to overprint them).
  row_h, title_h, top = 1.35, 0.45, 0.75
  height = (row_h + title_h) * nrows + top
  fig = _figure(max(1.35 * ncols, 7.5), height, layout=None)
  axes = fig.subplots(nrows, ncols, squeeze=False)
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01,
                      top=1 - (top + title_h) / height, wspace=0.12,
                      hspace=title_h / row_h)
  rgb = False
  for i, r in enumerate(rows):
    test, proj = _hwc(r.test), _hwc(r.projection)
    rgb |= test.shape[-1] == 3
    residual = test - proj
    residual = residual.mean(-1) if residual.shape[-1] > 1 else residual[..., 0]
    lim = float(np.max(np.abs(residual))) or 1e-12
    _show(axes[i, 0], test, f"test: {r.label}")
    _show(axes[i, 1], proj, f"projection\nd_hull={float(r.distance):.3g}")
    axes[i, 2].imshow(residual, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    axes[i, 2].set_title(f"residual\n±{lim:.2g}", fontsize=FONT - 1)
    for j, (image, weight, cls) in enumerate(r.support[:MAX_SUPPORT]):
      _show(axes[i, 3 + j], _hwc(image), f"w={float(weight):.2g}\n{cls}")
    for j in range(3 + min(len(r.support), MAX_SUPPORT), ncols):
      axes[i, j].set_axis_off()
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle("Test samples, their projections onto the pixel-space training hull, the "
               "residuals\nand the training images forming the projections", fontsize=FONT + 1,
               y=1 - 0.12 / height, va="top")
  mean = " (mean over the RGB channels)" if rgb else ""
  return Plot("image_rows", "Test images and their hull projections",
              "Each row: a test sample, its projection onto the pixel-space training hull, the "
              f"residual test − projection{mean} (red positive, blue negative, centred at 0, "
              "range above it) and the training images with the largest weights in the projection "
              "(weight w and class above each).", _png(fig))


# 6-7. Adversarial examples.


def adversarial(entries: Sequence[dict]) -> Optional[Plot]:
  """Minimal perturbation vs d_hull and vs d_NN, one row of two panels per norm."""
  entries = sorted((e for e in entries or () if as_array(e.get("perturbation")).size),
                   key=lambda e: names.norm_key(e.get("norm", "2")))
  if not entries:
    return None
  fig = _figure(9.5, 4.0 * len(entries))
  axes = fig.subplots(len(entries), 2, squeeze=False)
  for row, e in zip(axes, entries):
    p, name = as_array(e["perturbation"]), norm_name(e.get("norm", "2"))
    for ax, key, what in zip(row, ("d_hull", "d_nn"), ("training hull, d_hull",
                                                       "nearest training point, d_NN")):
      d = as_array(e.get(key))
      ok = np.isfinite(p) & np.isfinite(d) if d.size == p.size else np.zeros(p.size, bool)
      ax.scatter(d[ok], p[ok], s=9, color="C3", alpha=0.7, linewidths=0)
      _diagonal(ax, d[ok], p[ok])
      below = 100 * np.mean(p[ok] < d[ok]) if ok.any() else float("nan")
      r = spearman(e, ok) if key == "d_hull" else _rank_correlation(p[ok], d[ok])
      r_text = "n/a" if r is None else f"{r:.2f}"
      _style(ax, title=f"minimal PGD ({name}): {below:.0f}% of {int(ok.sum())} below y = x\n"
             f"rank correlation {r_text}",
             xlabel=f"distance to the {what} (L2, input space)",
             ylabel=f"L2 length of the minimal {name} perturbation")
      ax.legend(fontsize=FONT - 1, loc="upper left")
  fig.suptitle("Minimal adversarial perturbation vs distance to the training data",
               fontsize=FONT + 2)
  return Plot("adversarial", "Minimal adversarial perturbation vs distance to the training data",
              "Each dot is a clean test sample: the L2 length of the smallest L-inf or L2 "
              "perturbation that changes its label (y) against its distance to the training hull (left) "
              "and to the nearest training point (right); dots below y = x are flipped by less "
              "than their distance to the training data. Panel titles give Spearman's rank "
              "correlation of the two.", _png(fig))


def _norm_order(norm: str):
  return (0, "") if norm == "inf" else (1, norm)


def curve_points(points: dict):
  """(eps, accuracy) sorted by eps from {eps_str: acc}; entries without a number are dropped."""
  pairs = []
  for e, acc in points.items():
    try:
      pairs.append((float(e), float(acc)))
    except (TypeError, ValueError):
      continue
  pairs.sort()
  return [e for e, _ in pairs], [a for _, a in pairs]


def robustness(rob: dict) -> Optional[Plot]:
  """Robust accuracy vs eps per attack, plus the point-wise worst case, one panel per norm."""
  rob = rob or {}
  per_attack = rob.get("robust_accuracy") or {}
  worst = rob.get("worst_case_robust_accuracy") or {}
  norms = {n for curves in per_attack.values() for n, pts in curves.items() if pts}
  norms |= {n for n, pts in worst.items() if pts}
  if not norms:
    return None
  norms = sorted(norms, key=_norm_order)
  clean = rob.get("clean_accuracy")
  fig = _figure(4.6 * min(len(norms), 3), 3.6 * math.ceil(len(norms) / 3))
  for ax, norm in zip(_grid(fig, len(norms)), norms):
    shown = []  # (name, (eps, accuracy)) of the curves drawn so far, for coincidence notes.
    for i, attack in enumerate(sorted(per_attack)):
      pts = per_attack[attack].get(norm)
      if pts:
        curve, name = curve_points(pts), names.attack_name(attack)
        # Own line style and marker, above the worst case's thick line: a curve equal to
        # another stays visible, and the legend says which.
        ax.plot(*curve, color=f"C{i % 10}", ls=_LINESTYLES[(i + 1) % len(_LINESTYLES)],
                marker=_MARKERS[(i + 1) % len(_MARKERS)], ms=4, lw=1.4, zorder=3 + i,
                label=name + coincidence_note(curve, shown))
        shown.append((name, curve))
    if worst.get(norm):
      curve = curve_points(worst[norm])
      ax.plot(*curve, "k-", marker="s", ms=7, lw=3.5, alpha=0.55, zorder=2,
              label="worst case" + coincidence_note(curve, shown))
    if clean is not None:
      ax.axhline(float(clean), color="gray", ls=":", lw=1.2, label="clean")
    ax.set_ylim(-0.02, 1.02)
    _style(ax, title=f"{norm_name(norm)} attacks", ylabel="robust accuracy (fraction)",
           xlabel=f"perturbation budget eps ({norm_name(norm)} norm, input units)")
    ax.legend(fontsize=FONT - 1)
  fig.suptitle("Robust accuracy vs perturbation budget", fontsize=FONT + 2)
  return Plot("robustness", "Robust accuracy vs perturbation budget",
              "Accuracy under attack as the budget eps grows, per attack (thin lines, each with "
              "its own style and markers, drawn on top) and the point-wise worst case over "
              "attacks (thick grey-black); the dotted line is the clean accuracy. Where one "
              "attack is the worst case at every budget the two lines coincide, and the legend "
              "says so (\"identical to\").", _png(fig))


# 8. Ray scan.


def rays(r: Optional[dict]) -> Optional[Plot]:
  """Margin along x_t = p + t (x - p) for the example samples, and where the label first changes."""
  if not r:
    return None
  t = as_array(r.get("t"))
  margin = np.asarray(r.get("margin") if r.get("margin") is not None else np.zeros((0, 0)),
                      dtype=np.float64)
  margin = margin.reshape(-1, t.size) if t.size and margin.size else np.zeros((0, t.size))
  crossing = as_array(r.get("crossing"))
  panels = [p for p, ok in (("margin", margin.size > 0), ("crossing", crossing.size > 0)) if ok]
  if not panels:
    return None
  examples = r.get("examples")
  examples = (as_array(examples).astype(np.int64) if examples is not None
              else np.arange(len(margin)))
  crossed = [np.isfinite(crossing[k]) if 0 <= k < crossing.size else bool(np.any(m < 0))
             for k, m in zip(examples, margin)]
  fig = _figure(5.2 * len(panels), 3.8)
  for ax, panel in zip(_grid(fig, len(panels)), panels):
    if panel == "margin":
      for i, m in enumerate(margin):
        k = int(examples[i]) if i < len(examples) else i
        where = (f"label changes at t={crossing[k]:.2g}" if 0 <= k < crossing.size
                 and np.isfinite(crossing[k]) else "no label change")
        ax.plot(t, m, lw=1.2, color=f"C{i % 10}", ls=("-", "--", "-.", ":")[i // 10 % 4],
                label=f"sample {k}: {where}" if i < 10 else None)
      ax.axhline(0, color="gray", lw=0.8)
      title = f"margin along {len(margin)} example rays"
      if not any(crossed):
        title = f"margin along {len(margin)} example rays: none crosses a boundary"
      _style(ax, title=title,
             xlabel="position t on the ray (0 = hull projection, 1 = sample)",
             ylabel="margin of the predicted class (logit units)")
      if len(margin) <= 10:
        ax.legend(fontsize=FONT - 2, ncols=2)
    else:
      finite = crossing[np.isfinite(crossing)]
      if finite.size:
        ax.hist(finite, bins=30, color="C0", edgecolor="white", linewidth=0.5)
      ax.yaxis.set_major_locator(MaxNLocator(integer=True))
      _style(ax, title=f"first label change ({crossing.size - finite.size} of {crossing.size} "
             "without)", xlabel="position t of the first label change", ylabel="samples")
    for x0, what, ha in ((0.0, " hull", "left"), (1.0, "sample ", "right")):
      ax.axvline(x0, color="k", ls="--", lw=1)
      ax.annotate(what, (x0, 0.99), xycoords=("data", "axes fraction"), va="top", ha=ha,
                  fontsize=FONT - 1)
  fig.suptitle("Ray scan from the hull projection through the sample", fontsize=FONT + 2)
  return Plot("rays", "Ray scan from the hull projection through the sample",
              "Left: the margin of the sample's predicted class along the ray from its hull "
              "projection (t = 0) through the sample (t = 1) and beyond, the label changing where "
              "it crosses 0, for example samples chosen among those whose label changes (one "
              "per category of the table first); right: where the first label change happens, scanning the ray from "
              "behind the hull boundary (smallest t) outwards past the sample, over all samples.", _png(fig))


# 9. Linear head.


def linear_head(lh: Optional[dict], class_names: Sequence[str] = ()) -> Optional[Plot]:
  """Per-class min margin over the class's training-feature hull; boundary vs hull distance."""
  if not lh:
    return None
  m = as_array(lh.get("class_min_margin"))
  b, h = as_array(lh.get("boundary_distance")), as_array(lh.get("hull_distance"))
  panels = [p for p, ok in (("margin", m.size > 0), ("scatter", b.size > 0 and b.size == h.size))
            if ok]
  if not panels:
    return None
  fig = _figure(5.2 * len(panels), 4.0)
  for ax, panel in zip(_grid(fig, len(panels)), panels):
    if panel == "margin":
      names = [str(c) for c in class_names] if len(class_names) == m.size else [
          str(i) for i in range(m.size)]
      ax.bar(np.arange(m.size), m, color=np.where(m > 0, "tab:green", "tab:red"))
      ax.axhline(0, color="k", lw=0.8)
      ax.set_xticks(np.arange(m.size), names, rotation=45 if m.size > 10 or max(map(len, names))
                    > 4 else 0, ha="right" if m.size > 10 else "center")
      _style(ax, title=f"{int((m > 0).sum())} of {m.size} class hulls inside their own region",
             xlabel="class", ylabel="min margin over the class hull (logit units)")
    else:
      ok = np.isfinite(b) & np.isfinite(h)
      ax.scatter(h[ok], b[ok], s=9, color="C0", alpha=0.7, linewidths=0)
      _diagonal(ax, h[ok], b[ok])
      farther = 100 * np.mean(b[ok] > h[ok]) if ok.any() else float("nan")
      _style(ax, title=f"{farther:.0f}% farther from the boundary than from the hull",
             xlabel="test feature to training-feature hull (L2, feature units)",
             ylabel="to nearest decision boundary (L2, feature units)")
      ax.legend(fontsize=FONT - 1, loc="upper left")
  fig.suptitle("Linear head: decision regions vs the training-feature hull", fontsize=FONT + 2)
  return Plot("linear_head", "Linear head: decision regions vs the training-feature hull",
              "Left: per class, the smallest margin of that class over the hull of its training "
              "features, green (> 0) when the whole class hull lies inside its own decision "
              "region; right: each test sample's feature distance to the nearest decision "
              "boundary against its distance to the training-feature hull.", _png(fig))
