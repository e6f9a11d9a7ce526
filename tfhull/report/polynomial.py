"""Page of the polynomial-boundary study (`tfhull.studies.polynomial`)."""

from tfhull.report import html
from tfhull.report.toy2d import regions_grid


def write_polynomial_report(result, x_train, y_train, out_dir, *, title, metrics,
                            **page) -> dict:
  headline = []
  for d, (k, p) in enumerate(zip(result.degrees, result.monomials)):
    rel = "<" if p < result.n_train else ("=" if p == result.n_train else ">")
    fits = ", ".join(f"{n}: train {result.train_accuracy[d, f]:.3g}, |w| {result.norms[d, f]:.3g}"
                     for f, n in enumerate(result.fit_names))
    dis = result.disagreement_by_degree[k]
    dis_text = ("n/a (fewer than two interpolating fits)" if dis["inside"] is None else
                f"disagreement inside {dis['inside']:.3f}, outside {dis['outside']:.3f}")
    headline.append((f"degree {k}: {p} monomials {rel} n = {result.n_train}", fits, dis_text))
  section = html.Section("polynomial", "Polynomial decision boundaries",
                         "Every fit of the same degree sees the same features; the interpolating "
                         "ones agree on every training point.")
  section.add(regions_grid(
      result.labels, result.extent, result.polygon, x_train, y_train,
      [f"degree {k} ({p} monomials)" for k, p in zip(result.degrees, result.monomials)],
      list(result.fit_names), result.train_accuracy == 1.0, name="polynomial_regions",
      title="Polynomial sign boundaries inside and outside the training hull",
      caption="Rows: degree (fewer, as many or more monomials than training points); columns: "
      "the fit (minimum-norm least squares, ridge, gradient descent from different "
      "initializations). Fits identical on the training set extend differently outside the "
      "hull (black polygon)."), "regions skipped")
  return html.write_page(out_dir, [section], title=title, headline=headline, metrics=metrics,
                         **page)
