"""Assembles the figures into report.html (self-contained), report.md and metrics.json.

report.html embeds every figure as a base64 PNG data URI, has inline CSS and one inline script
(allowed by hash in its Content-Security-Policy, which forbids every other resource), and escapes
all text. report.md references the same figures as figures/<name>.png.
"""

import base64
import dataclasses
import hashlib
import html
import struct
from typing import Optional

import numpy as np

from tfhull.errors import UserError
from tfhull.report import figures
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
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.92em;color:#444;max-width:95ch}
p.skipped{color:#6b5316;background:#fcf8e3;padding:.3em .6em;border-left:3px solid #e0c36a}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
code{word-break:break-all}nav ul{columns:2}
""".strip()

# Counts the <img> elements that decoded; browser tests read body[data-figures-loaded].
SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, loaded = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) loaded++;
  }
  document.body.dataset.figuresLoaded = loaded + "/" + imgs.length;
});
""".strip()


def _csp() -> str:
  digest = lambda text: base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
  return (f"default-src 'none'; img-src data:; style-src 'sha256-{digest(CSS)}'; "
          f"script-src 'sha256-{digest(SCRIPT)}'; base-uri 'none'; form-action 'none'")


@dataclasses.dataclass
class Table:
  caption: str
  header: tuple
  rows: list                    # [tuple of str], same length as header.


@dataclasses.dataclass
class Section:
  """One titled part of the report: a paragraph, figures, tables and one-line skip notes."""
  id: str
  title: str
  text: str = ""
  plots: list = dataclasses.field(default_factory=list)
  tables: list = dataclasses.field(default_factory=list)
  skipped: list = dataclasses.field(default_factory=list)

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


def _median(values) -> str:
  a = figures.finite(values)
  return fmt(np.median(a)) if a.size else "n/a"


def _spaces(views) -> dict:
  """space -> its views, test split first, otherwise in the given order."""
  out = {}
  for v in views:
    out.setdefault(v.space, []).append(v)
  return {s: sorted(vs, key=lambda v: v.split != figures.TEST_SPLIT) for s, vs in out.items()}


def _hull_table(spaces: dict) -> Table:
  rows = []
  for space, views in spaces.items():
    for v in views:
      d, nn = figures.as_array(v.distance), figures.as_array(v.nearest_distance)
      ratio = np.divide(d, nn, out=np.full_like(d, np.nan), where=nn > 0)
      outside = np.asarray(v.outside, dtype=bool).ravel()
      rows.append((space, v.split, str(d.size),
                   f"{100 * outside.mean():.1f}%" if outside.size else "n/a",
                   _median(d), _median(nn), _median(ratio), _median(v.nnz)))
  return Table("Per space and split: medians over the queries.",
               ("space", "split", "queries", "certified outside", "median d_hull",
                "median d_NN", "median d_hull/d_NN", "median nnz"), rows)


def build_sections(inputs: ReportInputs) -> list:
  """The report's sections with their rendered figures, in order; figure names are unique."""
  sections = []

  s = Section("training", "Training")
  s.add(figures.training_curves(inputs.history), "Training curves skipped: no training history "
        "was given.")
  sections.append(s)

  s = Section("hull", "Distances to the training hull",
              "Every distance is a certified upper bound on the L2 distance from a query to the "
              "convex hull of the training set in that space; its lower bound certifies the query "
              "outside when positive.")
  spaces = _spaces(inputs.hull or [])
  if not spaces:
    s.skipped.append("Hull distance figures skipped: no hull measurements were given.")
  else:
    s.tables.append(_hull_table(spaces))
    names = set()
    for space, views in spaces.items():
      name, k = f"hull_{figures.slug(space)}", 2
      while name in names:
        name, k = f"hull_{figures.slug(space)}_{k}", k + 1
      names.add(name)
      s.add(figures.hull_distances(space, views, name), f"Distances in {space} skipped: no "
            "queries.")
    firsts = [views[0] for views in spaces.values()]  # The test split where there is one.
    s.add(figures.nnz_histograms(firsts), "Support-size histogram skipped: no nnz values were "
          "given.")
    s.add(figures.class_hull_scatter(firsts), "Own-class vs other-class scatter skipped: no "
          "per-class hull distances were given.")
  sections.append(s)

  s = Section("images", "Test images and their projections")
  s.add(figures.image_rows(inputs.image_rows or []), "Image rows skipped: no image rows were "
        "given (non-image data, or no pixel-space projections).")
  sections.append(s)

  s = Section("adversarial", "Adversarial examples and robustness")
  s.add(figures.adversarial(inputs.adversarial or []), "Minimal-perturbation scatter skipped: no "
        "minimal adversarial perturbations were given.")
  s.add(figures.robustness(inputs.robustness or {}), "Robust-accuracy curves skipped: no robust "
        "accuracies were given.")
  sections.append(s)

  s = Section("rays", "Ray scan: decision boundaries outside the hull")
  s.add(figures.rays(inputs.rays), "Ray scan skipped: no ray scan was given.")
  if inputs.rays and inputs.rays.get("categories"):
    s.tables.append(Table("Fraction of the scanned samples in each category.",
                          ("category", "fraction"),
                          [(str(k), fmt(v)) for k, v in inputs.rays["categories"].items()]))
  sections.append(s)

  s = Section("linear_head", "Linear head: decision regions and the feature hull")
  s.add(figures.linear_head(inputs.linear_head, inputs.class_names), "Linear-head figures "
        "skipped: no linear-head analysis was given.")
  sections.append(s)
  return sections


# HTML.


def _png_size(png: bytes) -> tuple:
  """(width, height) in pixels from the IHDR chunk."""
  return struct.unpack(">II", png[16:24])


def _html_table(header, rows, caption: str = "") -> str:
  e = html.escape
  out = ["<table>"]
  if caption:
    out.append(f"<caption>{e(caption)}</caption>")
  out.append("<thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr></thead>")
  out.append("<tbody>")
  for row in rows:
    out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
  out.append("</tbody></table>")
  return "\n".join(out)


def _provenance_rows(provenance) -> list:
  keys = ("step", "type", "uri", "fingerprint", "created")
  return [tuple("" if p.get(k) is None else str(p.get(k)) for k in keys) for p in provenance or []]


def render_html(inputs: ReportInputs, sections: list) -> str:
  """The whole report as one HTML string, figures inline."""
  e = html.escape
  out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
         f'<meta http-equiv="Content-Security-Policy" content="{e(_csp())}">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{e(inputs.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
         f"<h1>{e(inputs.title)}</h1>", f"<p>{e(INTRO)}</p>", '<h2 id="summary">Summary</h2>',
         _html_table(("Quantity", "Value", "What it means"),
                     [tuple(h) for h in inputs.headline or []]),
         "<nav><ul>"]
  for s in sections:
    out.append(f'<li><a href="#{e(s.id)}">{e(s.title)}</a></li>')
  out.append('<li><a href="#provenance">Provenance, versions and configuration</a></li>')
  out.append("</ul></nav>")
  number = 0
  for s in sections:
    out.append(f'<section id="{e(s.id)}">')
    out.append(f"<h2>{e(s.title)}</h2>")
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
          _html_table(("step", "type", "uri", "fingerprint", "created"),
                      _provenance_rows(inputs.provenance)),
          "<h2>Versions</h2>",
          _html_table(("package", "version"),
                      sorted((str(k), str(v)) for k, v in (inputs.versions or {}).items())),
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
  out = [f"# {_md(inputs.title)}", "", _md(INTRO), "", "## Summary", ""]
  out += _md_table(("Quantity", "Value", "What it means"),
                   [tuple(h) for h in inputs.headline or []])
  number = 0
  for s in sections:
    out += [f"## {_md(s.title)}", ""]
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
  out += _md_table(("step", "type", "uri", "fingerprint", "created"),
                   _provenance_rows(inputs.provenance))
  out += ["## Versions", ""]
  out += _md_table(("package", "version"),
                   sorted((str(k), str(v)) for k, v in (inputs.versions or {}).items()))
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
  resources), report.md with figures/<name>.png, and metrics.json (inputs.metrics as is).

  Raises:
    UserError: parts of `inputs` disagree in shape, or a headline entry is not a triple.

  Returns:
    {"figures": count, "figure_names": [...], "skipped": [one-line notes], "html": path,
     "markdown": path, "metrics": path, "figures_dir": path}.
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
  return {"figures": len(plots), "figure_names": [p.name for p in plots],
          "skipped": [n for s in sections for n in s.skipped], "figures_dir": fig_dir, **paths}


def write_page(out_dir: str, sections: list, *, title: str, headline: list, metrics: dict,
               provenance: list, config: str, versions: dict) -> dict:
  """A page of given sections (the studies: sweep, toy2d, polynomial) with the report's
  headline table, provenance, versions and config; see `write_report` for the files."""
  inputs = ReportInputs(title=title, provenance=provenance, config=config, versions=versions,
                        headline=headline, metrics=metrics, history={}, hull=[], image_rows=[],
                        adversarial=[], robustness={})
  return write_report(inputs, out_dir, sections=sections)

