"""Page of the polynomial-boundary study (`tfhull.studies.polynomial`)."""

import numpy as np

from tfhull.report import html
from tfhull.report.toy2d import regions_grid

INTRO = (
    "This page fits polynomial classifiers to one 2-D, two-class dataset. The features are all "
    "monomials up to degree k, for degrees giving fewer, as many or more monomials than the n "
    "training points, and each degree is fitted several ways: minimum-norm least squares, "
    "ridge regression and the limits of gradient descent from different starting points. The "
    "fits that classify every training point correctly agree on the training set; the page "
    "shows where their sign boundaries differ inside the convex hull of the training points "
    "(black polygon) and outside it.")

DEFINITION = (
    "Disagreement: the share of the grid, inside and outside the training hull, on which two "
    "fits of the same degree predict different classes, averaged over every pair of fits that "
    "classify all training points correctly (ridge included when it does).")


def statement(result) -> tuple:
  """(verdict, per-degree detail): where the fits that classify every training point disagree
  more, a result that differs between degrees said to be mixed; per degree, which fits those
  are and their disagreement inside and outside the hull."""
  parts, more, less = [], [], []
  for d, k in enumerate(result.degrees):
    ok = [n for f, n in enumerate(result.fit_names) if result.train_accuracy[d, f] == 1.0]
    dis = result.disagreement_by_degree[k]
    fits = (f"all {len(ok)} fits" if len(ok) == len(result.fit_names) else
            f"{len(ok)} of {len(result.fit_names)} fits" + (f" ({', '.join(ok)})" if ok else ""))
    if dis["inside"] is None or dis["outside"] is None:
      parts.append(f"degree {k}: {fits} classify every training point, too few to compare")
      continue
    side = "more outside the hull" if dis["outside"] > dis["inside"] else "not more outside"
    (more if dis["outside"] > dis["inside"] else less).append(k)
    parts.append(f"degree {k}: {fits} classify every training point and disagree {side} "
                 f"({html.pct(dis['outside'])} outside vs {html.pct(dis['inside'])} inside)")
  if more and less:
    verdict = (f"Mixed: the fits disagree more outside the hull than inside at degree "
               f"{', '.join(map(str, more))}, not at {', '.join(map(str, less))}")
  elif more:
    verdict = "At every compared degree the fits disagree more outside the hull than inside"
  elif less:
    verdict = "At no compared degree do the fits disagree more outside the hull than inside"
  else:
    verdict = "No degree has two fits that classify every training point"
  detail = "; ".join(parts)
  return verdict + ".", detail[0].upper() + detail[1:] + "."


def write_polynomial_report(result, x_train, y_train, out_dir, *, title, metrics,
                            **page) -> dict:
  headline = []
  for d, (k, p) in enumerate(zip(result.degrees, result.monomials)):
    rel = "<" if p < result.n_train else ("=" if p == result.n_train else ">")
    fits = ", ".join(f"{n}: train {html.pct(result.train_accuracy[d, f])}, |w| "
                     f"{result.norms[d, f]:.3g}" for f, n in enumerate(result.fit_names))
    dis = result.disagreement_by_degree[k]
    dis_text = ("n/a (fewer than two fits classify every training point)"
                if dis["inside"] is None else
                f"disagreement inside {html.pct(dis['inside'])}, outside "
                f"{html.pct(dis['outside'])}")
    headline.append((f"degree {k}: {p} monomials {rel} n = {result.n_train}", fits, dis_text))
  verdict, detail = statement(result)
  section = html.Section("polynomial", "Polynomial decision boundaries",
                         "Every fit of the same degree sees the same features. " + DEFINITION,
                         headline=detail)
  section.add(regions_grid(
      result.labels, result.extent, result.polygon, x_train, y_train,
      [f"degree {k} ({p} monomials)" for k, p in zip(result.degrees, result.monomials)],
      list(result.fit_names), np.asarray(result.train_accuracy) == 1.0,
      name="polynomial_regions",
      title="Polynomial sign boundaries inside and outside the training hull",
      caption="Rows: degree (fewer, as many or more monomials than training points); columns: "
      "the fit (minimum-norm least squares, ridge, gradient descent from different "
      "initializations). Fits identical on the training set extend differently outside the "
      "hull (black polygon)."), "regions skipped")
  return html.write_page(out_dir, [section], title=title, headline=headline, metrics=metrics,
                         intro=INTRO, summary=verdict, **page)
