r"""The 2-D boundary-extension study: MLPs from under- to over-parameterized, several training
regimes, all trained to interpolation; where their decision regions differ inside and outside the
training hull.

  python -m pipelines.toy2d                                 # two moons, 4 widths x 4 regimes
  python -m pipelines.toy2d --dataset=toy2d:spirals --toy_widths=16,128,1024

Runs the data step (default `--dataset=toy2d:moons`, 300 training points), then writes a
Toy2dStudy artifact: `toy2d.npz` (grid, inside-hull mask, every model's grid labels,
accuracies), `toy2d.json` (disagreement inside vs outside the hull by width and by regime, every
interpolating pair) and `report.html` with the decision regions and the disagreement plots.
"""

import dataclasses

from absl import app
from absl import flags

import tfhull.data
from components import common
from tfhull import training
from tfhull.errors import UserError
from tfhull.studies import toy2d

FLAGS = flags.FLAGS
common.define_all()
# This study's defaults for flags the command line does not set (global defaults untouched).
DEFAULTS = {"dataset": "toy2d:moons", "train_size": 300, "output_root": "runs/toy2d"}
WIDTHS = flags.DEFINE_list("toy_widths", ["8", "32", "128", "512"], "MLP widths.")
DEPTH = flags.DEFINE_integer("toy_depth", 2, "Hidden layers of every MLP.", lower_bound=1)
REGIMES = flags.DEFINE_list(
    "toy_regimes", ["adam", "adam:init_scale=3", "adam:weight_decay=0.01",
                    "sgd:learning_rate=0.1"],
    "Training regimes, OPTIMIZER[:KEY=VALUE,...] with keys learning_rate, weight_decay, "
    "init_scale, momentum, schedule, batch_size.")
EPOCHS = flags.DEFINE_integer("toy_epochs", 1000, "Maximum epochs (training stops at "
                              "interpolation).", lower_bound=1)
BATCH = flags.DEFINE_integer("toy_batch_size", 100, "Batch size.", lower_bound=1)
LR = flags.DEFINE_float("toy_learning_rate", 0.01, "Learning rate unless a regime sets one.")
WINDOW = flags.DEFINE_float("toy_window", 3.0, "Window side / training-data extent.",
                            lower_bound=1.0)
RESOLUTION = flags.DEFINE_integer("toy_resolution", 200, "Grid points per side.", lower_bound=8)
VERSION = "1"


def _config(seed: int):
  try:
    widths = tuple(int(w) for w in WIDTHS.value)
  except ValueError:
    raise UserError(f"--toy_widths={','.join(WIDTHS.value)} must be integers") from None
  if not widths or min(widths) < 1:
    raise UserError("--toy_widths must list positive integers")
  regimes = tuple(toy2d.parse_regime(r) for r in REGIMES.value)
  if not regimes:
    raise UserError("--toy_regimes must list at least one regime")
  base = training.TrainConfig(epochs=EPOCHS.value, batch_size=BATCH.value,
                              learning_rate=LR.value, until_interpolation=True,
                              seed=seed)
  for r in regimes:
    r.config(base).check()
  return widths, regimes, base


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cfg = common.study_config(common.values(DEFAULTS))
  widths, regimes, base = _config(cfg.data.seed)
  data_art = common.run_study(cfg, ["data"], show=False)["data"]
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull.report import toy2d as toy2d_report  # pylint: disable=import-outside-toplevel
  params = {"widths": widths, "depth": DEPTH.value,
            "regimes": [dataclasses.asdict(r) for r in regimes],
            "base": dataclasses.asdict(base), "window": WINDOW.value,
            "resolution": RESOLUTION.value}

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(data_art.uri)
    result = toy2d.run_study(ds, widths=widths, regimes=regimes, depth=DEPTH.value, base=base,
                             window=WINDOW.value, resolution=RESOLUTION.value)
    summary = {"disagreement_by_width": {str(k): v for k, v in
                                         result.disagreement_by_width.items()},
               "disagreement_by_regime": result.disagreement_by_regime,
               "interpolating": int((result.train_accuracy == 1.0).sum()),
               "models": int(result.train_accuracy.size),
               "fraction_of_window_inside_hull": float(result.inside.mean())}
    io.save_npz(io.join(out_dir, "toy2d.npz"), {
        "grid": result.grid, "inside": result.inside, "labels": result.labels,
        "polygon": result.polygon, "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy, "params": result.params,
        "train_predictions": result.train_predictions,
        "widths": list(result.widths), "regimes": list(result.regimes)})
    io.write_json(io.join(out_dir, "toy2d.json"), {**summary, "pairs": result.pairs})
    toy2d_report.write_toy2d_report(
        result, ds.x_train, ds.y_train, out_dir,
        title=f"tfhull: decision boundaries outside the hull ({ds.source})",
        metrics=summary, **common.page_meta({"data": data_art}, cfg.run.flags))
    return {**summary, "headline": ["interpolating", "models", "disagreement_by_width"]}

  art = common.run_named("toy2d", VERSION, "Toy2dStudy", params, {"data": data_art}, build,
                         cfg.run)
  print(f"\nToy2d study: {art.uri}")
  print(f"Report: {art.path('report.html')}")


if __name__ == "__main__":
  common.run_app(main, lambda: common.pipeline_groups(
      "toy2d study (pipelines.toy2d)",
      [WIDTHS, DEPTH, REGIMES, EPOCHS, BATCH, LR, WINDOW, RESOLUTION], ("data",)), DEFAULTS)
