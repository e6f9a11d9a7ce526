"""Assembles the figures into report.html (self-contained), report.md and metrics.json.

report.html embeds every figure as a base64 PNG data URI, has inline CSS and one inline script
(allowed by hash in its Content-Security-Policy, which forbids every other resource), and escapes
all text. report.md references the same figures as figures/<name>.png.
"""

import base64
import csv
import dataclasses
import hashlib
import html
import io as stdlib_io
import struct
from typing import Optional

import numpy as np

from tfhull.errors import UserError
from tfhull.report import figures
from tfhull.report import names
from tfhull.report.inputs import ReportInputs

INTRO = (
    "This report measures where a trained network's test data, adversarial examples and decision "
    "boundaries lie relative to the convex hull of its training set (Yousefzadeh, arXiv "
    "2203.10366). For every query and representation space it gives the certified distance to "
    "the training hull (d_hull, an upper bound with a matching lower bound), the distance to the "
    "nearest training point (d_NN) and the training points forming the projection: a query "
    "certified outside the hull is one on which the model extrapolates.")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  max-width:1150px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em;max-width:100%}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
td.wrap{overflow-wrap:anywhere}
caption{text-align:left;font-size:.95em;color:#444;padding-bottom:.3em}
p.lead{font-size:1.05em;background:#f4f8fb;border-left:3px solid #6a9fc9;padding:.4em .7em}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.92em;color:#444;max-width:95ch}
p.skipped{color:#6b5316;background:#fcf8e3;padding:.3em .6em;border-left:3px solid #e0c36a}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
code{word-break:break-all}nav ul{columns:2}
""".strip()

# Counts the <img> elements that decoded and records the page's scroll width against the
# window's; browser tests read body[data-figures-loaded] and body[data-width].
SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, loaded = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) loaded++;
  }
  document.body.dataset.figuresLoaded = loaded + "/" + imgs.length;
  document.body.dataset.width = document.documentElement.scrollWidth + "/" + window.innerWidth;
});
""".strip()


def _csp() -> str:
  digest = lambda text: base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
  return (f"default-src 'none'; img-src data:; style-src 'sha256-{digest(CSS)}'; "
          f"script-src 'sha256-{digest(SCRIPT)}'; base-uri 'none'; form-action 'none'")


@dataclasses.dataclass
class Table:
  """A table shown in the page; with a `name`, also written as <name>.csv beside metrics.json
  (`csv_header`/`csv_rows`: machine-readable columns, full-precision numbers and internal ids;
  the shown header and rows by default)."""
  caption: str
  header: tuple
  rows: list                    # [tuple of str], same length as header.
  name: str = ""
  csv_header: Optional[tuple] = None
  csv_rows: Optional[list] = None


@dataclasses.dataclass
class Section:
  """One titled part of the report: a headline sentence generated from its numbers, a paragraph,
  figures, tables and one-line skip notes."""
  id: str
  title: str
  text: str = ""
  plots: list = dataclasses.field(default_factory=list)
  tables: list = dataclasses.field(default_factory=list)
  skipped: list = dataclasses.field(default_factory=list)
  headline: str = ""

  def add(self, plot: Optional[figures.Plot], skip_note: str) -> None:
    if plot is None:
      self.skipped.append(skip_note)
    else:
      self.plots.append(plot)


def fmt(x, digits: int = 3) -> str:
  """A number for a table: `digits` significant digits; None, NaN and Inf as "n/a"."""
  if x is None:
    return "n/a"
  if isinstance(x, (float, np.floating)):
    return "n/a" if not np.isfinite(x) else f"{float(x):.{digits}g}"
  return str(x)


def pct(x, decimals: int = 1) -> str:
  """A fraction in [0, 1] as a percentage ("93.3%", exactly "100%" and "0%"); else "n/a"."""
  if x is None or isinstance(x, bool):
    return "n/a"
  try:
    x = float(x)
  except (TypeError, ValueError):
    return "n/a"
  if not np.isfinite(x):
    return "n/a"
  if x in (0.0, 1.0):
    return f"{100 * x:.0f}%"
  return f"{100 * x:.{decimals}f}%"


def _median_value(values) -> float:
  a = figures.finite(values)
  return float(np.median(a)) if a.size else float("nan")


def _median(values) -> str:
  return fmt(_median_value(values))


def _csv_value(x):
  if x is None:
    return ""
  if isinstance(x, (float, np.floating)):
    return "" if not np.isfinite(x) else repr(float(x))
  if isinstance(x, (np.integer,)):
    return int(x)
  return x


def ordered_spaces(views) -> dict:
  """space -> its views, spaces in `names.space_key` order and splits in `names.split_key`
  order (test first): the one order of every table and figure."""
  out = {}
  for v in views:
    out.setdefault(v.space, []).append(v)
  return {s: sorted(out[s], key=lambda v: names.split_key(v.split))
          for s in sorted(out, key=names.space_key)}



def _view_stats(v) -> dict:
  d, nn = figures.as_array(v.distance), figures.as_array(v.nearest_distance)
  ratio = np.divide(d, nn, out=np.full_like(d, np.nan), where=nn > 0)
  outside = np.asarray(v.outside, dtype=bool).ravel()
  return {"queries": int(d.size),
          "fraction_outside": float(outside.mean()) if outside.size else float("nan"),
          "median_distance": _median_value(d), "median_nearest_distance": _median_value(nn),
          "median_ratio": _median_value(ratio), "median_nnz": _median_value(v.nnz)}


def _hull_table(spaces: dict, dims: dict) -> Table:
  rows, raw = [], []
  for space, views in spaces.items():
    for v in views:
      st = _view_stats(v)
      rows.append((names.space_name(space, dims.get(space)), names.split_name(v.split),
                   str(st["queries"]), pct(st["fraction_outside"]), fmt(st["median_distance"]),
                   fmt(st["median_nearest_distance"]), fmt(st["median_ratio"]),
                   fmt(st["median_nnz"])))
      raw.append((space, names.space_name(space, dims.get(space)), v.split,
                  names.split_name(v.split), *(st[k] for k in (
                      "queries", "fraction_outside", "median_distance", "median_nearest_distance",
                      "median_ratio", "median_nnz"))))
  return Table("Per space and query set: the share certified outside the training hull and "
               "medians over the queries (L2 distances in each space's own units).",
               ("space", "query set", "queries", "certified outside", "median d_hull", "median d_NN",
                "median d_hull/d_NN", "median nnz"), rows, name="hull",
               csv_header=("space_id", "space", "split_id", "split", "queries",
                           "fraction_outside", "median_distance", "median_nearest_distance",
                           "median_ratio", "median_nnz"), csv_rows=raw)


def _spread(values: dict) -> str:
  """{name: fraction} -> "100% (pixels)" when all agree, else "from 80% (a) to 100% (b)"."""
  items = [(k, v) for k, v in values.items() if v is not None and np.isfinite(v)]
  if not items:
    return "n/a"
  lo, hi = min(items, key=lambda kv: kv[1]), max(items, key=lambda kv: kv[1])
  if pct(lo[1]) == pct(hi[1]):
    return f"{pct(hi[1])} in every space" if len(items) > 1 else f"{pct(hi[1])} ({hi[0]})"
  return f"from {pct(lo[1])} ({lo[0]}) to {pct(hi[1])} ({hi[0]})"


def _training_headline(history: dict) -> str:
  loss, test = figures.as_array(history.get("loss")), figures.as_array(
      history.get("test_accuracy"))
  epochs = max(loss.size, test.size)
  if not epochs:
    return ""
  text = f"Training ran {epochs} epoch{'s' if epochs != 1 else ''}"
  if test.size:
    text += (f"; the test accuracy after the last one is {pct(test[-1])} (best "
             f"{pct(test.max())}, after epoch {int(test.argmax()) + 1})")
  return text + "."


def _hull_headline(spaces: dict, dims: dict) -> str:
  tests = {names.space_name(s, dims.get(s)): _view_stats(vs[0]) for s, vs in spaces.items()
           if vs[0].split == figures.TEST_SPLIT}
  if not tests:
    return ""
  text = ("Test points certified outside the training hull: "
          f"{_spread({k: v['fraction_outside'] for k, v in tests.items()})}")
  ratios = [v["median_ratio"] for v in tests.values() if np.isfinite(v["median_ratio"])]
  if ratios:
    lo, hi = fmt(min(ratios)), fmt(max(ratios))
    span = lo if lo == hi else f"{lo} to {hi}"
    text += f"; median d_hull/d_NN {span}"
    if max(ratios) < 1:
      text += " (the hull reaches closer than the nearest training point)"
  adv = [(names.space_name(s, dims.get(s)), names.split_name(v.split), _view_stats(v))
         for s, vs in spaces.items() for v in vs if v.split != figures.TEST_SPLIT]
  if adv:
    fr = [a[2]["fraction_outside"] for a in adv if np.isfinite(a[2]["fraction_outside"])]
    if fr:
      text += (f"; adversarial examples and flip points: {pct(min(fr))}"
               + ("" if pct(min(fr)) == pct(max(fr)) else f" to {pct(max(fr))}")
               + " outside")
  return text + "."


def _adversarial_headline(entries, rob: dict) -> str:
  parts = []
  for e in sorted(entries or (), key=lambda e: names.norm_key(e.get("norm", "2"))):
    p, d = figures.as_array(e.get("perturbation")), figures.as_array(e.get("d_hull"))
    ok = np.isfinite(p) & np.isfinite(d) if p.size == d.size else np.zeros(p.size, bool)
    if not ok.any():
      continue
    r = figures.spearman(e, ok)
    parts.append(f"minimal PGD ({names.norm_name(e.get('norm', '2'))}): median L2 length "
                 f"{fmt(float(np.median(p[ok])))}, smaller than d_hull for "
                 f"{pct(float(np.mean(p[ok] < d[ok])))} of {int(ok.sum())} samples, rank "
                 f"correlation with d_hull {fmt(r, 2)}")
  worst = (rob or {}).get("worst_case_robust_accuracy") or {}
  for norm in sorted(worst, key=names.norm_key):
    eps, acc = figures.curve_points(worst[norm])
    if eps:
      parts.append(f"worst-case robust accuracy ({names.norm_name(norm)}) {pct(acc[-1])} at "
                   f"eps {fmt(eps[-1])}")
  if not parts:
    return ""
  text = "; ".join(parts)
  return text[0].upper() + text[1:] + "."


def _rays_headline(rays: Optional[dict]) -> str:
  if not rays:
    return ""
  cats = rays.get("categories") or {}
  crossing = figures.as_array(rays.get("crossing"))
  if crossing.size and not np.isfinite(crossing).any():
    return f"None of the {crossing.size} scanned rays crosses a decision boundary."
  if not cats:
    return ""
  shares = ", ".join(f"{k} for {pct(v)}" for k, v in
                     sorted(cats.items(), key=lambda kv: -kv[1]))
  return f"Where the label first changes along the ray: {shares} of the samples."


def _head_headline(lh: Optional[dict]) -> str:
  if not lh:
    return ""
  m = figures.as_array(lh.get("class_min_margin"))
  b, h = figures.as_array(lh.get("boundary_distance")), figures.as_array(lh.get("hull_distance"))
  parts = []
  if m.size:
    parts.append(f"{int((m > 0).sum())} of {m.size} class hulls lie inside their own decision "
                 "region")
  if b.size and b.size == h.size:
    ok = np.isfinite(b) & np.isfinite(h)
    if ok.any():
      parts.append(f"{pct(float(np.mean(b[ok] < h[ok])))} of test features are nearer a decision "
                   "boundary than the training-feature hull")
  return ("; ".join(parts) + ".") if parts else ""


def _robustness_table(rob: dict) -> Optional[Table]:
  rows, raw = [], []
  per_attack = (rob or {}).get("robust_accuracy") or {}
  worst = (rob or {}).get("worst_case_robust_accuracy") or {}
  curves = [(attack, norm, pts) for attack in sorted(per_attack)
            for norm, pts in (per_attack[attack] or {}).items() if pts]
  curves += [("worst case", norm, pts) for norm, pts in worst.items() if pts]
  curves.sort(key=lambda c: (names.norm_key(c[1]), c[0] == "worst case", c[0]))
  for attack, norm, pts in curves:
    eps_acc = list(zip(*figures.curve_points(pts)))
    shown = attack if attack == "worst case" else names.attack_name(attack)
    rows.append((names.norm_name(norm), shown,
                 ", ".join(f"eps {fmt(eps)}: {pct(acc)}" for eps, acc in eps_acc)))
    raw += [(norm, attack, eps, acc) for eps, acc in eps_acc]
  if not rows:
    return None
  return Table("Robust accuracy per attack and budget eps (clean accuracy "
               f"{pct((rob or {}).get('clean_accuracy'))}); the worst case is point-wise over "
               "the attacks.", ("norm", "attack", "robust accuracy by budget eps"), rows,
               name="robustness", csv_header=("norm", "attack", "eps", "robust_accuracy"),
               csv_rows=raw)


def _adversarial_table(entries) -> Optional[Table]:
  rows, raw = [], []
  for e in sorted(entries or (), key=lambda e: names.norm_key(e.get("norm", "2"))):
    p, d, nn = (figures.as_array(e.get(k)) for k in ("perturbation", "d_hull", "d_nn"))
    if not p.size or d.size != p.size or nn.size != p.size:
      continue
    ok = np.isfinite(p) & np.isfinite(d) & np.isfinite(nn)
    if not ok.any():
      continue
    r = figures.spearman(e, np.isfinite(p) & np.isfinite(d))
    vals = (int(ok.sum()), float(np.median(p[ok])), float(np.mean(p[ok] < d[ok])),
            float(np.mean(p[ok] < nn[ok])), r)
    norm = str(e.get("norm", "2"))
    rows.append((f"minimal PGD ({names.norm_name(norm)})", str(vals[0]), fmt(vals[1]),
                 pct(vals[2]), pct(vals[3]), fmt(r, 2)))
    raw.append((norm, *vals))
  if not rows:
    return None
  return Table("Minimal adversarial perturbations (L2 length, input space) against the distance "
               "of the clean sample to the training hull and to its nearest training point; the "
               "correlation is Spearman's rank correlation with d_hull.",
               ("attack", "samples", "median perturbation", "smaller than d_hull",
                "smaller than d_NN", "correlation with d_hull"), rows, name="adversarial",
               csv_header=("norm", "samples", "median_perturbation", "fraction_below_d_hull",
                           "fraction_below_d_nn", "spearman_d_hull"), csv_rows=raw)


def build_sections(inputs: ReportInputs) -> list:
  """The report's sections with their rendered figures, in order; figure names are unique."""
  sections = []
  dims = dict(inputs.space_dims or {})

  s = Section("training", "Training", headline=_training_headline(inputs.history or {}))
  s.add(figures.training_curves(inputs.history), "Training curves skipped: no training history "
        "was given.")
  sections.append(s)

  s = Section("hull", "Distances to the training hull",
              "Every distance is a certified upper bound on the L2 distance from a query to the "
              "convex hull of the training set in that space; its lower bound certifies the query "
              "outside when positive.")
  spaces = ordered_spaces(inputs.hull or [])
  if not spaces:
    s.skipped.append("Hull distance figures skipped: no hull measurements were given.")
  else:
    s.headline = _hull_headline(spaces, dims)
    s.tables.append(_hull_table(spaces, dims))
    used = set()
    for space, views in spaces.items():
      name, k = f"hull_{figures.slug(space)}", 2
      while name in used:
        name, k = f"hull_{figures.slug(space)}_{k}", k + 1
      used.add(name)
      s.add(figures.hull_distances(space, views, name, dim=dims.get(space)),
            f"Distances in {names.space_name(space, dims.get(space))} skipped: no queries.")
    firsts = [views[0] for views in spaces.values()]  # The test split where there is one.
    s.add(figures.nnz_histograms(firsts, dims), "Support-size histogram skipped: no nnz values "
          "were given.")
    s.add(figures.class_hull_scatter(firsts, dims), "Own-class vs other-class scatter skipped: "
          "no per-class hull distances were given.")
  sections.append(s)

  s = Section("images", "Test images and their projections")
  rows = inputs.image_rows or []
  if rows:
    d = [float(r.distance) for r in rows]
    s.headline = (f"The {len(rows)} test images farthest from the pixel-space training hull "
                  f"(d_hull {fmt(min(d))} to {fmt(max(d))}); each projection mixes "
                  f"{min(len(r.support) for r in rows)} to {max(len(r.support) for r in rows)} "
                  "training images (at most 8 shown).")
  s.add(figures.image_rows(rows), "Image rows skipped: no image rows were "
        "given (non-image data, or no pixel-space projections).")
  sections.append(s)

  s = Section("adversarial", "Adversarial examples and robustness",
              headline=_adversarial_headline(inputs.adversarial, inputs.robustness))
  table = _adversarial_table(inputs.adversarial)
  if table:
    s.tables.append(table)
  table = _robustness_table(inputs.robustness)
  if table:
    s.tables.append(table)
  s.add(figures.adversarial(inputs.adversarial or []), "Minimal-perturbation scatter skipped: no "
        "minimal adversarial perturbations were given.")
  s.add(figures.robustness(inputs.robustness or {}), "Robust-accuracy curves skipped: no robust "
        "accuracies were given.")
  sections.append(s)

  s = Section("rays", "Ray scan: decision boundaries outside the hull",
              headline=_rays_headline(inputs.rays))
  s.add(figures.rays(inputs.rays), "Ray scan skipped: no ray scan was given.")
  if inputs.rays and inputs.rays.get("categories"):
    cats = inputs.rays["categories"]
    s.tables.append(Table("Share of the scanned samples by where the label first changes.",
                          ("first label change", "share of samples"),
                          [(str(k), pct(v)) for k, v in cats.items()], name="rays",
                          csv_header=("category", "fraction"),
                          csv_rows=[(str(k), float(v)) for k, v in cats.items()]))
  sections.append(s)

  s = Section("linear_head", "Linear head: decision regions and the feature hull",
              headline=_head_headline(inputs.linear_head))
  s.add(figures.linear_head(inputs.linear_head, inputs.class_names), "Linear-head figures "
        "skipped: no linear-head analysis was given.")
  sections.append(s)

  if inputs.geometry is not None:
    from tfhull.report import geometry  # pylint: disable=import-outside-toplevel
    sections.append(geometry.section(inputs.geometry, dims))
  return sections


# HTML.


def _png_size(png: bytes) -> tuple:
  """(width, height) in pixels from the IHDR chunk."""
  return struct.unpack(">II", png[16:24])


def _html_table(header, rows, caption: str = "", wrap: tuple = ()) -> str:
  """A table; the cells of the columns `wrap` (URIs, hashes) break anywhere instead of widening
  the page."""
  e = html.escape
  out = ["<table>"]
  if caption:
    out.append(f"<caption>{e(caption)}</caption>")
  out.append("<thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr></thead>")
  out.append("<tbody>")
  for row in rows:
    out.append("<tr>" + "".join(f'<td class="wrap">{e(str(c))}</td>' if j in wrap else
                                f"<td>{e(str(c))}</td>" for j, c in enumerate(row)) + "</tr>")
  out.append("</tbody></table>")
  return "\n".join(out)


PROVENANCE_HEADER = ("step", "type", "uri", "fingerprint", "created")


def _provenance_order(provenance) -> list:
  """Steps in their given order; the nodes of one step (hull, features) in the one order of
  spaces and query sets."""
  provenance = list(provenance or [])
  first = {}
  for i, p in enumerate(provenance):
    first.setdefault(str(p.get("step", "")).split("/")[0], i)
  return sorted(provenance, key=lambda p: (first[str(p.get("step", "")).split("/")[0]],
                                           names.step_key(p.get("step", ""))))


def _provenance_rows(provenance, raw: bool = False) -> list:
  """Rows of the provenance table, steps by their human names (`raw`: the step id first)."""
  rows = []
  for p in _provenance_order(provenance):
    cells = ["" if p.get(k) is None else str(p.get(k)) for k in PROVENANCE_HEADER]
    step = cells[0]
    cells[0] = names.step_name(step)
    rows.append(tuple([step] + cells if raw else cells))
  return rows


def page_tables(inputs: ReportInputs, sections: list) -> list:
  """Every named table of the page (the CSV files): summary, the sections', provenance,
  versions."""
  out = [Table("Summary", ("quantity", "value", "what it means"),
               [tuple(h) for h in inputs.headline or []], name="summary")]
  out += [t for s in sections for t in s.tables if t.name]
  out.append(Table("Provenance", PROVENANCE_HEADER, _provenance_rows(inputs.provenance),
                   name="provenance", csv_header=("step_id",) + PROVENANCE_HEADER,
                   csv_rows=_provenance_rows(inputs.provenance, raw=True)))
  out.append(Table("Versions", ("package", "version"), _version_rows(inputs.versions),
                   name="versions"))
  return out


def _version_rows(versions) -> list:
  """Packages in alphabetical order, the git commit last."""
  items = sorted((str(k), str(v)) for k, v in (versions or {}).items() if k != "git commit")
  if versions and "git commit" in versions:
    items.append(("git commit", str(versions["git commit"])))
  return items


def csv_text(table: Table) -> str:
  buf = stdlib_io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(table.csv_header or table.header)
  for row in (table.csv_rows if table.csv_rows is not None else table.rows):
    w.writerow([_csv_value(c) for c in row])
  return buf.getvalue()


def render_html(inputs: ReportInputs, sections: list) -> str:
  """The whole report as one HTML string, figures inline."""
  e = html.escape
  out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
         f'<meta http-equiv="Content-Security-Policy" content="{e(_csp())}">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{e(inputs.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
         f"<h1>{e(inputs.title)}</h1>", f"<p>{e(inputs.intro or INTRO)}</p>",
         '<h2 id="summary">Summary</h2>']
  if inputs.summary:
    out.append(f'<p class="lead">{e(inputs.summary)}</p>')
  out += [_html_table(("Quantity", "Value", "What it means"),
                      [tuple(h) for h in inputs.headline or []]), "<nav><ul>"]
  for s in sections:
    out.append(f'<li><a href="#{e(s.id)}">{e(s.title)}</a></li>')
  out.append('<li><a href="#provenance">Provenance, versions and configuration</a></li>')
  out.append("</ul></nav>")
  number = 0
  for s in sections:
    out.append(f'<section id="{e(s.id)}">')
    out.append(f"<h2>{e(s.title)}</h2>")
    if s.headline:
      out.append(f'<p class="lead">{e(s.headline)}</p>')
    if s.text:
      out.append(f"<p>{e(s.text)}</p>")
    for t in s.tables:
      out.append(_html_table(t.header, t.rows, t.caption))
    for p in s.plots:
      number += 1
      w, h = _png_size(p.png)
      data = base64.b64encode(p.png).decode("ascii")
      out.append(f'<figure id="fig-{e(p.name)}"><img src="data:image/png;base64,{data}" '
                 f'width="{w}" height="{h}" alt="{e(p.title)}">'
                 f"<figcaption><b>Figure {number}. {e(p.title)}.</b> {e(p.caption)}</figcaption>"
                 "</figure>")
    for note in s.skipped:
      out.append(f'<p class="skipped">{e(note)}</p>')
    out.append("</section>")
  out += ['<section id="provenance">', "<h2>Provenance</h2>",
          _html_table(PROVENANCE_HEADER, _provenance_rows(inputs.provenance), wrap=(2, 3)),
          "<h2>Versions</h2>",
          _html_table(("package", "version"), _version_rows(inputs.versions), wrap=(1,)),
          "<h2>Configuration</h2>",
          "<details><summary>Resolved flags</summary>",
          f"<pre>{e(inputs.config or '')}</pre></details>", "</section>",
          f"<script>{SCRIPT}</script>", "</body>", "</html>", ""]
  return "\n".join(out)


# Markdown.


def _md(text) -> str:
  """Markdown table-cell / inline text: HTML escaped, pipes escaped, one line."""
  return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(header, rows) -> list:
  out = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
  out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
  return out + [""]


def render_markdown(inputs: ReportInputs, sections: list) -> str:
  """The report in Markdown; figures referenced as figures/<name>.png."""
  out = [f"# {_md(inputs.title)}", "", _md(inputs.intro or INTRO), "", "## Summary", ""]
  if inputs.summary:
    out += [f"**{_md(inputs.summary)}**", ""]
  out += _md_table(("Quantity", "Value", "What it means"),
                   [tuple(h) for h in inputs.headline or []])
  number = 0
  for s in sections:
    out += [f"## {_md(s.title)}", ""]
    if s.headline:
      out += [f"**{_md(s.headline)}**", ""]
    if s.text:
      out += [_md(s.text), ""]
    for t in s.tables:
      out += [f"*{_md(t.caption)}*", ""] + _md_table(t.header, t.rows)
    for p in s.plots:
      number += 1
      alt = _md(p.caption).replace("[", "(").replace("]", ")")
      out += [f"![{alt}](figures/{p.name}.png)", "",
              f"**Figure {number}. {_md(p.title)}.** {_md(p.caption)}", ""]
    for note in s.skipped:
      out += [f"> {_md(note)}", ""]
  out += ["## Provenance", ""]
  out += _md_table(PROVENANCE_HEADER, _provenance_rows(inputs.provenance))
  out += ["## Versions", ""]
  out += _md_table(("package", "version"), _version_rows(inputs.versions))
  fence = "````" if "```" in (inputs.config or "") else "```"
  out += ["## Configuration", "", fence, (inputs.config or "").rstrip("\n"), fence, ""]
  return "\n".join(out)


def check(inputs: ReportInputs) -> None:
  """Raises UserError on inputs whose parts disagree (so no half-written report is left)."""
  for h in inputs.headline or []:
    if len(h) != 3:
      raise UserError(f"report headline entry {h!r} is not (quantity, value, meaning)")
  for v in inputs.hull or []:
    q = np.shape(v.distance)
    for field in ("lower_bound", "nearest_distance", "outside", "nnz", "own_class_distance",
                  "nearest_other_class_distance", "own_class_weight"):
      value = getattr(v, field)
      if value is not None and np.shape(value) != q:
        raise UserError(f"HullView {v.space}/{v.split}: {field} has shape {np.shape(value)}, "
                        f"distance {q}")
  for r in inputs.image_rows or []:
    if np.shape(r.test) != np.shape(r.projection):
      raise UserError(f"ImageRow {r.label}: test {np.shape(r.test)} and projection "
                      f"{np.shape(r.projection)} differ in shape")


def write_report(inputs: ReportInputs, out_dir: str, sections: Optional[list] = None) -> dict:
  """Writes the report of `inputs` into out_dir (local or gs://).

  `sections` replaces the study's sections (built from `inputs` by default), for other pages
  such as a sweep's, which share the page, the headline table and the provenance.

  Files: report.html (self-contained: figures as base64 PNG data URIs, inline CSS, no external
  resources), report.md with figures/<name>.png, metrics.json (inputs.metrics as is) and every
  named table as <name>.csv beside it (summary, hull, adversarial, robustness, rays,
  provenance, versions; those of `sections` for other pages).

  Raises:
    UserError: parts of `inputs` disagree in shape, or a headline entry is not a triple.

  Returns:
    {"figures": count, "figure_names": [...], "skipped": [one-line notes], "html": path,
     "markdown": path, "metrics": path, "figures_dir": path, "tables": {name: csv path}}.
  """
  from tfhull import io  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  check(inputs)
  sections = build_sections(inputs) if sections is None else sections
  plots = [p for s in sections for p in s.plots]
  fig_dir = io.join(out_dir, "figures")
  io.gfile.makedirs(fig_dir)
  for p in plots:
    io.write_bytes(io.join(fig_dir, f"{p.name}.png"), p.png)
  paths = {"html": io.join(out_dir, "report.html"), "markdown": io.join(out_dir, "report.md"),
           "metrics": io.join(out_dir, "metrics.json")}
  io.write_bytes(paths["html"], render_html(inputs, sections).encode("utf-8"))
  io.write_bytes(paths["markdown"], render_markdown(inputs, sections).encode("utf-8"))
  io.write_json(paths["metrics"], inputs.metrics)
  tables = {}
  for t in page_tables(inputs, sections):
    path = io.join(out_dir, f"{t.name}.csv")
    if t.name in tables:
      raise UserError(f"report: two tables named {t.name!r}")
    io.write_bytes(path, csv_text(t).encode("utf-8"))
    tables[t.name] = path
  return {"figures": len(plots), "figure_names": [p.name for p in plots],
          "skipped": [n for s in sections for n in s.skipped], "figures_dir": fig_dir,
          "tables": tables, **paths}


def write_page(out_dir: str, sections: list, *, title: str, headline: list, metrics: dict,
               provenance: list, config: str, versions: dict, intro: Optional[str] = None,
               summary: str = "") -> dict:
  """A page of given sections (the studies: sweep, toy2d, polynomial) with its own introduction
  and summary sentence, the report's headline table, provenance, versions and config; see
  `write_report` for the files."""
  inputs = ReportInputs(title=title, provenance=provenance, config=config, versions=versions,
                        headline=headline, metrics=metrics, history={}, hull=[], image_rows=[],
                        adversarial=[], robustness={}, intro=intro, summary=summary)
  return write_report(inputs, out_dir, sections=sections)

