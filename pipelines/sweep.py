r"""Sweeps: the full pipeline per grid point, then one sweep report.

  python -m pipelines.sweep --flagfile=configs/sweep_digits_mlp.flags
  python -m pipelines.sweep --flagfile=configs/digits_mlp.flags \
      --sweep='model=mlp:width=16,depth=2|mlp:width=256,depth=2' --sweep=label_noise=0|0.5

Each `--sweep=FLAG=V1|V2|...` is one axis (values separated by '|', since model specs contain
commas); the grid is their product. Every grid point runs `pipelines.full` up to
`--sweep_last_step` with those flag values; upstream artifacts shared by several points (the data
when only the model changes) come from the cache. Then a SweepReport artifact collects parameters
and over-parameterization ratios against training and test accuracy, feature-space hull metrics,
the median minimal adversarial perturbation and the boundary crossings along the rays, with
figures against the parameter count (log scale).
"""

import itertools

from absl import app
from absl import flags
from absl import logging

from components import common
from pipelines import full
from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError
from tfhull.report import sweep as sweep_report

FLAGS = flags.FLAGS
SWEEP = flags.DEFINE_multi_string("sweep", [], "An axis of the grid: FLAG=V1|V2|... (repeat the "
                                  "flag for more axes).")
LAST = flags.DEFINE_string("sweep_last_step", "analyze", "The last pipeline step run per grid "
                           "point (analyze or report).")
VERSION = "1"


def parse_axes(specs) -> list:
  """[(flag name, [values])] from --sweep specs; UserError on unknown flags or empty axes."""
  axes = []
  for spec in specs:
    name, eq, values = spec.partition("=")
    name = name.strip()
    if not eq or not name:
      raise UserError(f"--sweep={spec!r} must be FLAG=V1|V2|... (e.g. "
                      "--sweep='model=mlp:width=16|mlp:width=256')")
    if name not in FLAGS or name in ("sweep", "sweep_last_step", "output_root", "flagfile"):
      raise UserError(f"--sweep={spec!r}: {name!r} is not a flag a sweep can vary")
    vals = [v.strip() for v in values.split("|") if v.strip()]
    if not vals:
      raise UserError(f"--sweep={spec!r} lists no values")
    if name in (a[0] for a in axes):
      raise UserError(f"--sweep names {name} twice; give each axis once")
    axes.append((name, vals))
  if not axes:
    raise UserError("no --sweep axis given, e.g. --sweep='model=mlp:width=16|mlp:width=256'")
  return axes


def run_sweep(argv=()) -> artifacts.Artifact:
  axes = parse_axes(SWEEP.value)
  if LAST.value not in ("analyze", "report"):
    raise UserError(f"--sweep_last_step={LAST.value} must be analyze or report")
  grid = [dict(zip([a[0] for a in axes], combo)) for combo in
          itertools.product(*[a[1] for a in axes])]
  original = {name: FLAGS[name].value for name, _ in axes}
  # Every grid point's flags are checked before the first one trains.
  for point in grid:
    _set(point)
    for step in full.STEPS:
      step.check_flags()
  rows, inputs = [], {}
  try:
    for i, point in enumerate(grid):
      logging.info("=== sweep point %d/%d: %s", i + 1, len(grid), point)
      _set(point)
      done = full.run_until(LAST.value, argv)
      analysis = io.read_json(done["analyze"].path("analysis.json"))
      rows.append({"assignment": point, "metrics": sweep_report.point_metrics(done, analysis),
                   "history": io.read_json(done["train"].path("history.json"))})
      inputs[f"point{i:03d}"] = done["analyze"]
  finally:
    _set(original)
  x_axis = "model" if any(a[0] == "model" for a in axes) else None

  def build(out_dir: str) -> dict:
    result = sweep_report.write_sweep_report(
        rows, x_axis, out_dir, title="tfhull sweep: " + "; ".join(
            f"{n} in {len(v)} values" for n, v in axes),
        **common.page_meta(inputs))
    io.write_json(io.join(out_dir, "sweep.json"), {"axes": axes, "points": [
        {k: v for k, v in r.items() if k != "history"} for r in rows]})
    return {"points": len(rows), "figures": result["figures"],
            "params": [r["metrics"]["params"] for r in rows],
            "test_accuracy": [r["metrics"]["test_accuracy"] for r in rows],
            "headline": ["points", "params", "test_accuracy"]}

  art = common.run_named("sweep", VERSION, "SweepReport",
                         {"axes": axes, "last_step": LAST.value}, inputs, build)
  print(f"\nSweep report: {art.path('report.html')}")
  return art


def _set(assignment: dict) -> None:
  for name, value in assignment.items():
    try:
      FLAGS[name].parse(value) if isinstance(value, str) else setattr(FLAGS, name, value)
    except (flags.IllegalFlagValueError, ValueError) as e:
      raise UserError(f"--sweep: {name}={value!r} is not a valid value ({e})") from None


def main(argv):
  run_sweep(argv)


if __name__ == "__main__":
  app.run(common.exit_on_user_error(main))
