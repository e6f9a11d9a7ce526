r"""Sweeps: the study per grid point, then one sweep report.

  python -m pipelines.sweep --flagfile=configs/sweep_digits_mlp.flags
  python -m pipelines.sweep --flagfile=configs/digits_mlp.flags \
      --sweep='model=mlp:width=16,depth=2|mlp:width=256,depth=2' --sweep=label_noise=0|0.5

Each `--sweep=FLAG=V1|V2|...` is one axis (values separated by '|', since model specs contain
commas); the grid is their product (`tfhull.study.grid.expand`), and every grid point is a
`StudyConfig` built from the flags with that point's values. Each point runs the study graph up to
`--sweep_last_step`; nodes that do not depend on the swept values (the data, and the pixel and Haar
features and test-set hull distances when only the model changes) are computed once and are cache
hits at every other point. Then a SweepReport artifact collects parameters and
over-parameterization ratios against training and test accuracy, hull metrics, the median minimal
adversarial perturbation and the boundary crossings along the rays, with figures against the
parameter count (log scale) whose error bars are 95% intervals. With `--seeds=0,1,2`
(`pipelines.seeds`) every grid point runs once per model seed and its intervals cover the seeds
and the test samples; without, the test samples of the one seed.
"""

from absl import flags
from absl import logging

from components import common
from pipelines import seeds as seeds_pipeline
from tfhull import study
from tfhull.errors import UserError

common.define_all()
FLAGS = flags.FLAGS
SWEEP = flags.DEFINE_multi_string("sweep", [], "An axis of the grid: FLAG=V1|V2|... (repeat the "
                                  "flag for more axes).")
LAST = flags.DEFINE_string("sweep_last_step", "analyze", "The last step run per grid point "
                           "(analyze or report).")
VERSION = "3"
_FIXED = ("sweep", "sweep_last_step", "seeds", "output_root", "flagfile", "force", "strategy", "tpu")


def parse_axes(specs) -> list:
  """[(flag name, [values as given])] from --sweep specs; UserError on unknown flags or empty
  axes."""
  axes = []
  for spec in specs:
    name, eq, vals = spec.partition("=")
    name = name.strip()
    if not eq or not name:
      raise UserError(f"--sweep={spec!r} must be FLAG=V1|V2|... (e.g. "
                      "--sweep='model=mlp:width=16|mlp:width=256')")
    if name not in FLAGS or name in _FIXED:
      raise UserError(f"--sweep={spec!r}: {name!r} is not a flag a sweep can vary")
    vals = [v.strip() for v in vals.split("|") if v.strip()]
    if not vals:
      raise UserError(f"--sweep={spec!r} lists no values")
    if name in (a[0] for a in axes):
      raise UserError(f"--sweep names {name} twice; give each axis once")
    axes.append((name, vals))
  if not axes:
    raise UserError("no --sweep axis given, e.g. --sweep='model=mlp:width=16|mlp:width=256'")
  return axes


def point_values(base: dict, assignment: dict) -> dict:
  """The flag values of one grid point: `base` with each swept flag parsed from its string."""
  out = dict(base)
  for name, text in assignment.items():
    try:
      out[name] = FLAGS[name].parser.parse(text)
    except (flags.IllegalFlagValueError, ValueError) as e:
      raise UserError(f"--sweep: {name}={text!r} is not a valid value ({e})") from None
  return out


def study_configs(axes: list, base: dict) -> list:
  """[(assignment, StudyConfig)] of every grid point, each checked before any point runs."""
  out = []
  for assignment in study.expand(axes):
    cfg = common.study_config(point_values(base, assignment))
    study.check(cfg, [LAST.value])
    out.append((assignment, cfg))
  return out


def run_sweep(argv=()):
  common.check_argv(argv)
  axes = parse_axes(SWEEP.value)
  if LAST.value not in ("analyze", "report"):
    raise UserError(f"--sweep_last_step={LAST.value} must be analyze or report")
  base = common.values()
  points = study_configs(axes, base)
  chosen = seeds_pipeline.parse(seeds_pipeline.SEEDS.value)
  common.quiet_console()
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull.report import sweep as sweep_report  # pylint: disable=import-outside-toplevel
  from tfhull.study import seeds as seeds_lib  # pylint: disable=import-outside-toplevel
  rows, inputs = [], {}
  for i, (assignment, cfg) in enumerate(points):
    logging.info("=== sweep point %d/%d: %s", i + 1, len(points), assignment)
    if chosen:
      cfgs = seeds_pipeline.configs(cfg, chosen, [LAST.value])
      dones = seeds_pipeline.run_all(cfgs, chosen, [LAST.value])
    else:
      dones = [study.run(study.build(cfg), [LAST.value], cfg)]
    done = dones[0]
    analysis = io.read_json(done["analyze"].path("analysis.json"))
    metrics = sweep_report.point_metrics(done, analysis)
    metrics["intervals"] = seeds_lib.headline_intervals(dones)
    rows.append({"assignment": assignment, "metrics": metrics,
                 "history": io.read_json(done["train"].path("history.json"))})
    for s, d in zip(chosen or [None], dones):
      inputs[f"point{i:03d}" + ("" if s is None else f"_seed{s}")] = d["analyze"]
  x_axis = "model" if any(a[0] == "model" for a in axes) else None
  run_cfg = common.run_config(base)

  def build(out_dir: str) -> dict:
    result = sweep_report.write_sweep_report(
        rows, x_axis, out_dir, title="tfhull sweep: " + "; ".join(
            f"{n} in {len(v)} values" for n, v in axes),
        **common.page_meta(inputs, run_cfg.flags))
    io.write_json(io.join(out_dir, "sweep.json"), {"axes": axes, "points": [
        {k: v for k, v in r.items() if k != "history"} for r in rows]})
    return {"points": len(rows), "figures": result["figures"],
            "params": [r["metrics"]["params"] for r in rows],
            "test_accuracy": [r["metrics"]["test_accuracy"] for r in rows],
            "headline": ["points", "params", "test_accuracy"]}

  params = {"axes": axes, "last_step": LAST.value, **({"seeds": chosen} if chosen else {})}
  art = common.run_named("sweep", VERSION, "SweepReport", params, inputs, build, run_cfg)
  print(f"\nSweep report: {art.path('report.html')}")
  return art


def main(argv):
  run_sweep(argv)


if __name__ == "__main__":
  common.run_app(main, lambda: common.pipeline_groups(
      "sweep (pipelines.sweep)", [SWEEP, LAST], common.COMPONENTS))
