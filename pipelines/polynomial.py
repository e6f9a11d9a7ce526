r"""The polynomial-boundary study: with as many monomials as training points or more, fits that
agree on every training point extend differently outside the training hull.

  python -m pipelines.polynomial                       # two moons, 91 points, degrees 6, 12, 20
  python -m pipelines.polynomial --poly_degrees=4,12,30 --poly_inits=5

Runs the data step (default `--dataset=toy2d:moons --train_size=91`: degree 12 has exactly 91
monomials), then writes a PolynomialStudy artifact: `polynomial.npz` (grid, inside-hull mask,
every fit's grid signs, accuracies, weight norms), `polynomial.json` (disagreement inside vs
outside the hull between interpolating fits, per degree) and `report.html`.
"""

from absl import app
from absl import flags

import tfhull.data
from components import common
from tfhull.errors import UserError
from tfhull.studies import polynomial

FLAGS = flags.FLAGS
common.define_all()
# This study's defaults for flags the command line does not set (global defaults untouched).
DEFAULTS = {"dataset": "toy2d:moons", "train_size": 91, "output_root": "runs/polynomial"}
DEGREES = flags.DEFINE_list("poly_degrees", ["6", "12", "20"], "Polynomial degrees k "
                            "((k+1)(k+2)/2 monomials: below, equal to, above the training size).")
RIDGE = flags.DEFINE_float("poly_ridge", 1e-3, "Ridge penalty lambda.", lower_bound=0.0)
INITS = flags.DEFINE_integer("poly_inits", 3, "Gradient-descent initializations (the first "
                             "starts at 0).", lower_bound=1)
INIT_SCALE = flags.DEFINE_float("poly_init_scale", 1.0, "Norm of the random starts relative to "
                                "the minimum-norm solution's.", lower_bound=0.0)
WINDOW = flags.DEFINE_float("poly_window", 3.0, "Window side / training-data extent.",
                            lower_bound=1.0)
RESOLUTION = flags.DEFINE_integer("poly_resolution", 200, "Grid points per side.", lower_bound=8)
VERSION = "1"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    degrees = tuple(int(d) for d in DEGREES.value)
  except ValueError:
    raise UserError(f"--poly_degrees={','.join(DEGREES.value)} must be integers") from None
  cfg = common.study_config(common.values(DEFAULTS))
  seed = cfg.data.seed
  data_art = common.run_study(cfg, ["data"], show=False)["data"]
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull.report import polynomial as poly_report  # pylint: disable=import-outside-toplevel
  params = {"degrees": degrees, "ridge": RIDGE.value, "inits": INITS.value,
            "init_scale": INIT_SCALE.value,
            "window": WINDOW.value, "resolution": RESOLUTION.value, "seed": seed}

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(data_art.uri)
    r = polynomial.run_study(ds.x_train, ds.y_train, ds.x_test, ds.y_test, degrees=degrees,
                             ridge=RIDGE.value, inits=INITS.value,
                             init_scale=INIT_SCALE.value, seed=seed,
                             window=WINDOW.value, resolution=RESOLUTION.value)
    summary = {"n_train": r.n_train, "monomials": dict(zip(map(str, r.degrees), r.monomials)),
               "disagreement_by_degree": {str(k): v for k, v in
                                          r.disagreement_by_degree.items()},
               "min_norm_is_smallest": bool(all(
                   r.norms[d, r.fit_names.index("min_norm")] <= r.norms[d, f] + 1e-9
                   for d in range(len(r.degrees)) for f in range(len(r.fit_names))
                   if r.exact[d, f]))}
    io.save_npz(io.join(out_dir, "polynomial.npz"), {
        "grid": r.grid, "inside": r.inside, "labels": r.labels, "polygon": r.polygon,
        "train_accuracy": r.train_accuracy, "test_accuracy": r.test_accuracy, "norms": r.norms,
        "exact": r.exact,
        "degrees": list(r.degrees), "fit_names": list(r.fit_names)})
    io.write_json(io.join(out_dir, "polynomial.json"), {**summary, "pairs": r.pairs})
    poly_report.write_polynomial_report(
        r, ds.x_train, ds.y_train, out_dir,
        title=f"tfhull: polynomial decision boundaries ({ds.source}, n = {r.n_train})",
        metrics=summary, **common.page_meta({"data": data_art}, cfg.run.flags))
    return {**summary, "headline": ["n_train", "monomials", "disagreement_by_degree"]}

  art = common.run_named("polynomial", VERSION, "PolynomialStudy", params, {"data": data_art},
                         build, cfg.run)
  print(f"\nPolynomial study: {art.uri}")
  print(f"Report: {art.path('report.html')}")


if __name__ == "__main__":
  common.run_app(main, lambda: common.pipeline_groups(
      "polynomial study (pipelines.polynomial)",
      [DEGREES, RIDGE, INITS, INIT_SCALE, WINDOW, RESOLUTION], ("data",)), DEFAULTS)
