r"""Repeated model seeds (`--seeds`) for pipelines.full and pipelines.sweep.

  python -m pipelines.full --flagfile=configs/digits_mlp.flags --seeds=0,1,2

Each seed is one study (`tfhull.study.seeds.seeded`: training and attack seeds; the data keep
`--seed`), run through the study graph, so the seed-independent artifacts (data, pixel and Haar
features and their test-set hull distances) are computed once and are cache hits for every other
seed. A Seeds artifact then collects the headline numbers with 95% intervals over seeds and test
samples (`tfhull.report.intervals`).
"""

from absl import flags
from absl import logging

from components import common
from tfhull.errors import UserError

SEEDS = flags.DEFINE_list("seeds", [], "Model seeds (training and attacks; the data keep --seed): "
                          "one study per seed, shared seed-independent artifacts, headline "
                          "numbers with 95% intervals over seeds and test samples.")
VERSION = "1"


def parse(values) -> list:
  """[int] of --seeds, each >= 0 and listed once; UserError otherwise."""
  out = []
  for v in values:
    try:
      s = int(str(v).strip())
    except ValueError:
      raise UserError(f"--seeds={','.join(values)}: {v!r} is not an integer; pass e.g. "
                      "--seeds=0,1,2") from None
    if s < 0:
      raise UserError(f"--seeds={','.join(values)}: {s} is negative; seeds must be >= 0")
    if s in out:
      raise UserError(f"--seeds={','.join(values)} lists {s} twice; list each seed once")
    out.append(s)
  return out


def configs(cfg, seeds, targets) -> list:
  """[StudyConfig] of each seed, every one checked before the first runs."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  from tfhull.study import seeds as seeds_lib  # pylint: disable=import-outside-toplevel
  out = [seeds_lib.seeded(cfg, s) for s in seeds]
  for c in out:
    study.check(c, targets)
  return out


def run_all(cfgs, seeds, targets) -> list:
  """Runs each seed's study up to `targets`; [{node key: Artifact}] in seed order."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  dones = []
  for s, c in zip(seeds, cfgs):
    logging.info("=== seed %d (%d of %d)", s, len(dones) + 1, len(seeds))
    dones.append(study.run(study.build(c), targets, c))
  return dones


def write_page(seeds, dones, run_cfg, title: str):
  """The Seeds artifact: headline intervals over the seeds' studies (inputs: their report nodes,
  or their analyze nodes when the studies stopped there)."""
  from tfhull.report import intervals as intervals_report  # pylint: disable=import-outside-toplevel
  from tfhull.study import seeds as seeds_lib  # pylint: disable=import-outside-toplevel
  from tfhull.study import steps  # pylint: disable=import-outside-toplevel
  inputs = {f"seed{s}": d.get("report", d["analyze"]) for s, d in zip(seeds, dones)}
  dims = {a.summary["space"]: int(a.summary["dim"]) for a in steps.hull_inputs(dones[0]).values()
          if a.summary.get("dim") and a.summary.get("space")}

  def build(out_dir: str) -> dict:
    iv = seeds_lib.headline_intervals(dones)
    intervals_report.write_seeds_report(
        seeds, iv, out_dir, title=title, dims=dims,
        reports=[d["report"].path("report.html") for d in dones if "report" in d],
        **common.page_meta(inputs, run_cfg.flags))
    acc = iv.get("test_accuracy") or {}
    return {"seeds": list(seeds), "test_accuracy": acc.get("estimate"),
            "test_accuracy_interval": [acc.get("low"), acc.get("high")],
            "headline": ["seeds", "test_accuracy", "test_accuracy_interval"]}

  return common.run_named("seeds", VERSION, "SeedsReport", {"seeds": list(seeds)}, inputs,
                          build, run_cfg)


def run_full(cfg, seeds) -> object:
  """pipelines.full with --seeds: every seed's study and report, then the Seeds page."""
  cfgs = configs(cfg, seeds, ["report"])
  common.quiet_console()
  dones = run_all(cfgs, seeds, ["report"])
  for s, d in zip(seeds, dones):
    print(f"Report of seed {s}: {d['report'].path('report.html')}")
  title = (cfg.report.title or f"tfhull: {dones[0]['data'].summary.get('source')} with "
           f"{dones[0]['train'].summary.get('model_spec')}") + f", seeds {', '.join(map(str, seeds))}"
  art = write_page(seeds, dones, cfg.run, title)
  print(f"\nSeeds report: {art.path('report.html')}")
  return art
