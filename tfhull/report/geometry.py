"""The report's boundary-geometry section (docs/geometry.md): closest flip points, class-hull
distances, scope, morphing, ambiguity, and the class-hull-in-region check with its caveat.

`section(geo)` takes {"summary": analysis.json's "geometry", "arrays": its arrays (the analysis
npz's "geo_*" without the prefix), "class_names": [...], "image_shape": (H, W, C) or None} and
returns an `html.Section`; each figure function returns a `figures.Plot` or None.
"""

from typing import Optional, Sequence

import numpy as np

from tfhull.report import figures
from tfhull.report import names
from tfhull.report.figures import _diagonal
from tfhull.report.figures import _figure
from tfhull.report.figures import _grid
from tfhull.report.figures import _png
from tfhull.report.figures import _style
from tfhull.report.figures import FONT
from tfhull.report.figures import Plot
from tfhull.report.html import fmt
from tfhull.report.html import pct
from tfhull.report.html import Section
from tfhull.report.html import Table


def flip_figure(a: dict) -> Optional[Plot]:
  """Per sample: the closest flip point found against the segment-bisection and CW distances."""
  c = figures.as_array(a.get("flip_closest"))
  if not c.size:
    return None
  refs = [(k, label) for k, label in (("flip_bisection_pgd", "segment bisection (minimal PGD)"),
                                      ("flip_bisection_cw", "segment bisection (CW-L2)"),
                                      ("flip_cw_l2", "CW-L2 adversarial example"))
          if np.isfinite(figures.as_array(a.get(k))).any()]
  if not refs:
    return None
  fig = _figure(4.4 * len(refs), 4.0)
  for ax, (k, label) in zip(_grid(fig, len(refs)), refs):
    r = figures.as_array(a[k])
    ok = np.isfinite(r) & np.isfinite(c)
    ax.scatter(r[ok], c[ok], s=10, alpha=0.7, linewidths=0)
    _diagonal(ax, r[ok], c[ok])
    below = np.mean(c[ok] < r[ok] * (1 - 1e-6)) if ok.any() else float("nan")
    _style(ax, title=f"{100 * below:.0f}% closer than this", xlabel=f"{label} (L2, pixels)",
           ylabel="closest flip point found (L2, pixels)")
  fig.suptitle("Closest flip points vs points on one segment", fontsize=FONT + 2)
  return Plot("geometry_flip", "Closest flip points vs segment bisection and CW",
              "Each dot is an attacked test sample: the L2 distance to the nearest decision "
              "boundary point the iterative search found (started from x, the CW-L2 example and "
              "the bisection flip point) against the distance of the segment-bisection flip "
              "point or the CW-L2 example; dots below the diagonal are closer boundary points.",
              _png(fig))


def class_hull_figure(summary: dict, a: dict, class_names: Sequence[str] = (),
                      dims: Optional[dict] = None) -> Optional[Plot]:
  """Heat maps of the distance between every pair of class hulls, one per space."""
  spaces = sorted((s for s in (summary or {}) if f"class_hull_distance[{s}]" in a),
                  key=names.space_key)
  if not spaces:
    return None
  fig = _figure(4.6 * len(spaces), 4.2)
  for ax, space in zip(_grid(fig, len(spaces)), spaces):
    m = np.asarray(a[f"class_hull_distance[{space}]"], np.float64)
    c = len(m)
    im = ax.imshow(m, cmap="viridis")
    labels = list(class_names) if len(class_names) == c else [str(i) for i in range(c)]
    ax.set_xticks(np.arange(c), labels, fontsize=FONT - 2)
    ax.set_yticks(np.arange(c), labels, fontsize=FONT - 2)
    if c <= 12:
      for i in range(c):
        for j in range(c):
          if i != j:
            ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=FONT - 3,
                    color="w" if m[i, j] < np.median(m) else "k")
    s = summary[space]
    ax.set_title(f"{names.space_name(space, (dims or {}).get(space))}\n"
                 f"{s['disjoint_pairs']} of {s['pairs']} pairs disjoint", fontsize=FONT)
    fig.colorbar(im, ax=ax, shrink=0.8)
  fig.suptitle("Distance between class hulls (training set)", fontsize=FONT + 2)
  return Plot("geometry_class_hulls", "Distance between class hulls",
              "Cell (i, j): the certified L2 distance between the convex hulls of the training "
              "points of classes i and j in that space (0 on the diagonal; a pair is disjoint "
              "when its certified lower bound is positive).", _png(fig))


def scope_figure(summary: dict, a: dict, image_shape=None,
                 dims: Optional[dict] = None) -> Optional[Plot]:
  """Stacked bars of the three scope categories per (space, split); the pixel residual image."""
  rows = [(space, split, v) for space, by in sorted((summary or {}).items(),
                                                    key=lambda kv: names.space_key(kv[0]))
          for split, v in sorted(by.items(), key=lambda kv: names.split_key(kv[0]))]
  if not rows:
    return None
  res = a.get("scope_residual[pixel]")
  show_img = res is not None and image_shape is not None and int(np.prod(image_shape)) == \
      np.size(res)
  fig = _figure(6.4 + (3.2 if show_img else 0), 0.5 + 0.32 * len(rows) + 1.5)
  axes = _grid(fig, 2 if show_img else 1, max_cols=2)
  ax = axes[0]
  cats = list(rows[0][2]["box"])
  left = np.zeros(len(rows))
  for k, (cat, color) in enumerate(zip(cats, ("tab:green", "tab:orange", "tab:red"))):
    v = np.array([r[2]["box"][cat] or 0.0 for r in rows])
    ax.barh(np.arange(len(rows)), v, left=left, color=color, label=cat)
    left += v
    del k
  ax.set_yticks(np.arange(len(rows)), [f"{names.space_name(s, (dims or {}).get(s))}, "
                                       f"{names.split_name(sp)}" for s, sp, _ in rows],
                fontsize=FONT - 2)
  ax.invert_yaxis()
  ax.set_xlim(0, 1)
  ax.legend(fontsize=FONT - 2, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
  _style(ax, title="Scope: per-coordinate range of the training set", xlabel="share of queries",
         ylabel="")
  if show_img:
    img = np.asarray(res, np.float64).reshape(image_shape)
    img = img.mean(-1) if img.ndim == 3 else img
    im = axes[1].imshow(img, cmap="magma")
    axes[1].set_axis_off()
    axes[1].set_title("mean |x - projection| per pixel\n(test, certified outside)", fontsize=FONT)
    fig.colorbar(im, ax=axes[1], shrink=0.8)
  return Plot("geometry_scope", "Scope of the training data",
              "Each bar splits a query set into: not certified outside the training hull; "
              "outside the hull but with every coordinate within the training set's range "
              "(within scope); outside that range (out of scope). The image shows where the "
              "test residuals x - projection lie.", _png(fig))


_KIND_COLORS = ("tab:blue", "tab:cyan", "tab:red", "tab:orange")


def morph_figure(summary: Optional[dict], a: dict) -> Optional[Plot]:
  """Margin of the start label and hull distance along each morph, by kind."""
  if not summary or "morph_t" not in a:
    return None
  t, kind = np.asarray(a["morph_t"]), np.asarray(a["morph_kind"])
  margin, dist = np.asarray(a["morph_margin"]), np.asarray(a["morph_hull_distance"])
  names_ = summary.get("kind_names") or []  # morph_kind indexes this list (JSON keeps order).
  fig = _figure(10.0, 3.8)
  ax1, ax2 = _grid(fig, 2, max_cols=2)
  for k, name in enumerate(names_):
    for i, row in enumerate(np.flatnonzero(kind == k)):
      kw = {"label": name} if i == 0 else {}
      ax1.plot(t, margin[row], color=_KIND_COLORS[k % 4], lw=1, alpha=0.8, **kw)
      ax2.plot(t, dist[row], color=_KIND_COLORS[k % 4], lw=1, alpha=0.8, **kw)
  ax1.axhline(0, color="k", lw=0.8)
  _style(ax1, title="Margin of the start label (< 0: label changed)", xlabel="t (0: x_a, 1: x_b)",
         ylabel="logit margin")
  _style(ax2, title="Distance to the training hull", xlabel="t (0: x_a, 1: x_b)",
         ylabel="L2 distance (pixels)")
  ax1.legend(fontsize=FONT - 2)
  return Plot("geometry_morph", "Morphing between samples",
              "Segments x_t = (1 - t) x_a + t x_b between pairs of training or test images of the "
              "same or different classes: left, the margin of the label at x_a (it crosses 0 "
              "where the label changes); right, the certified distance to the pixel-space "
              "training hull (0 inside it: train-train segments lie inside by convexity).",
              _png(fig))


def margin_figure(head: Optional[dict], a: dict) -> Optional[Plot]:
  """Histogram of every training feature's margin in its own class's region."""
  m = figures.finite(a.get("head_train_margin"))
  if not m.size:
    return None
  fig = _figure(5.6, 3.6)
  ax = fig.subplots()
  ax.hist(m, bins=40, color="tab:green")
  ax.axvline(0, color="k", lw=0.8)
  _style(ax, title=f"{pct(np.mean(m > 0))} of training features inside their class region",
         xlabel="margin z_own - max other (logit units)", ylabel="training features")
  del head
  return Plot("geometry_train_margin", "Training-feature margins (the class-hull-in-region check)",
              "The margin of each training feature in the linear head's region of its own class; "
              "a class hull lies inside its region exactly when all its training features have "
              "positive margins, which is automatic once training accuracy is 100%: the check "
              "says nothing beyond interpolation, the distribution shows how far inside.",
              _png(fig))


def _q(d: Optional[dict]) -> str:
  d = d or {}
  return fmt(d.get("median")) + (f" ({fmt(d.get('q10'))}-{fmt(d.get('q90'))})" if d else "")


def section(geo: Optional[dict], dims: Optional[dict] = None) -> Section:
  """The "Boundary geometry" section: tables, sentences and figures of `geo` (module doc)."""
  s = Section("geometry", "Boundary geometry: flip points, class hulls, scope, morphing")
  if not geo or not geo.get("summary"):
    s.skipped.append("Boundary geometry skipped: the analysis has none (older artifact).")
    return s
  g, a = geo["summary"], geo.get("arrays") or {}
  sentences = []
  cf = g.get("closest_flip")
  if cf:
    mean = cf.get("mean_ratio_to_bisection")
    reading = ("segment bisection along the attacks' directions is already within "
               f"{pct(1 - mean)} of the nearest boundary point found" if mean is not None and
               mean > 0.95 else "segment bisection overstates the distance to the boundary")
    sentences.append(
        f"Closest flip points: over {cf['found']} of {cf['samples']} attacked test samples the "
        f"iterative search finds a boundary point at median L2 {fmt(cf['closest'].get('median'))}"
        f", vs {fmt(cf['bisection_min_pgd'].get('median'))} for segment bisection and "
        f"{fmt(cf['cw_l2'].get('median'))} for CW-L2; it is strictly closer than bisection for "
        f"{pct(cf['fraction_closer_than_bisection'])} of samples (distance ratio: mean "
        f"{fmt(mean)}, median {fmt(cf['median_ratio_to_bisection'])}): {reading}.")
    s.tables.append(Table(
        "L2 distance from each attacked test sample to a decision-boundary point, median "
        "(10th-90th percentile), pixels.", ("method", "distance"),
        [("closest flip point (iterative search)", _q(cf["closest"])),
         ("segment bisection, minimal PGD (L2)", _q(cf["bisection_min_pgd"])),
         ("segment bisection, CW-L2", _q(cf["bisection_cw"])),
         ("CW-L2 adversarial example", _q(cf["cw_l2"]))], name="geometry_flip"))
  ch = g.get("class_hulls") or {}
  for space, m in sorted(ch.items(), key=lambda kv: names.space_key(kv[0])):
    sentences.append(
        f"In {names.space_name(space, (dims or {}).get(space))}, {m['disjoint_pairs']} of "
        f"{m['pairs']} pairs of class hulls are certified disjoint ({m['intersecting_pairs']} "
        f"intersect), the closest pair {fmt(m['min_distance'])} apart: "
        + ("the classes are linearly separable pairwise there." if m["disjoint_pairs"] ==
           m["pairs"] else "some classes overlap there."))
  sc = g.get("scope") or {}
  rows = []
  for space, by in sorted(sc.items(), key=lambda kv: names.space_key(kv[0])):
    for split, v in sorted(by.items(), key=lambda kv: names.split_key(kv[0])):
      rows.append((names.space_name(space, (dims or {}).get(space)), names.split_name(split),
                   *(pct(x) for x in v["box"].values()),
                   pct(list(v["pca"].values())[1])))
  if rows:
    s.tables.append(Table(
        "Scope: share of each query set not certified outside the training hull, outside it "
        "but within the per-coordinate range of the training set, outside that range; last "
        "column: within the range along every principal direction instead.",
        ("space", "queries", "inside hull", "outside, within scope", "outside scope",
         "within PCA scope"), rows, name="geometry_scope"))
    test = sc.get("pixel", {}).get("test")
    if test:
      sentences.append(
          f"Scope (pixels, test): {pct(test['box']['outside the hull, within scope'])} of test "
          f"images are outside the hull yet within the training set's pixel ranges "
          f"(extrapolation within scope), {pct(test['box']['outside scope'])} leave those "
          "ranges.")
  mo = g.get("morph")
  if mo:
    k = mo["kinds"]
    tt = k.get("train-train, different class", {})
    sentences.append(
        f"Morphing: {pct(tt.get('fraction_label_changes_inside_hull'))} of train-train "
        "segments between different classes change label inside the training hull (both ends "
        "are training points, so the whole segment is inside; where both are classified "
        "correctly the label must change), and "
        f"{pct(k.get('test-test, same class', {}).get('fraction_label_changes'))} of test-test "
        "same-class segments change label somewhere.")
    s.tables.append(Table(
        "Morphing: segments between pairs of images (pixels).",
        ("pairs", "count", "label changes", "label changes inside the hull",
         "points inside the hull"),
        [(n, str(v["pairs"]), pct(v["fraction_label_changes"]),
          pct(v["fraction_label_changes_inside_hull"]), pct(v["fraction_points_inside_hull"]))
         for n, v in k.items()], name="geometry_morph"))
  am = g.get("ambiguity")
  if am:
    sentences.append(
        f"Ambiguity (top-two logit gap below delta = {fmt(am['delta'])}, "
        f"{am['delta_rule']}): {pct(am['test'])} of test samples, {pct(am.get('rays'))} of "
        f"ray points and {pct(am.get('morph'))} of morph points.")
  head = g.get("head")
  if head:
    sentences.append(
        f"Linear head: the closest boundary point of a test feature's region is at median "
        f"{fmt(head['closest'].get('median'))} (exact; second-closest class "
        f"{fmt(head['second_closest'].get('median'))}); "
        f"{pct(head['fraction_train_margin_positive'])} of training features lie inside their "
        f"class's region (median margin {fmt(head['train_margin'].get('median'))}), which puts "
        "each such class hull inside its region; caveat: that is automatic at 100% training "
        "accuracy.")
  s.headline = " ".join(sentences)
  s.add(flip_figure(a), "Closest-flip figure skipped: no attacked samples were searched.")
  s.add(class_hull_figure(ch, a, geo.get("class_names") or (), dims),
        "Class-hull distance figure skipped: no class-hull distances.")
  s.add(scope_figure(sc, a, geo.get("image_shape"), dims), "Scope figure skipped: no scope.")
  s.add(morph_figure(mo, a), "Morphing figure skipped: no morphs.")
  s.add(margin_figure(head, a), "Training-margin figure skipped: no linear head.")
  return s
