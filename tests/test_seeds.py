"""Intervals (`tfhull.analysis.intervals`) and repeated seeds (`tfhull.study.seeds`,
`pipelines.seeds`): coverage on a synthetic case with a known mean; seed-independent artifacts
built once."""

import collections
import dataclasses

import numpy as np
import pytest

from tfhull.analysis import intervals


def test_interval_covers_a_known_mean_about_95_percent():
  """200 samples of size 80 from N(3, 1): the 95% bootstrap interval of the mean contains 3 in
  about 95% of them (binomial 3-sigma band of 200 trials around 0.95, bootstrap's slight
  undercoverage at n = 80 included)."""
  rng = np.random.default_rng(1)
  hits = 0
  trials = 200
  for t in range(trials):
    iv = intervals.interval([rng.normal(3.0, 1.0, 80)], "mean", resamples=400, seed=t)
    assert iv.low <= iv.estimate <= iv.high
    hits += iv.low <= 3.0 <= iv.high
  assert 0.88 <= hits / trials <= 0.995, hits


def test_interval_over_seeds_covers_the_mean_of_seed_effects():
  """10 seeds whose means scatter (sd 0.5) around 1, 50 samples each: the two-level interval
  covers 1 in most of 100 trials, while the one-level interval of the pooled seeds does not
  (it ignores the seeds' scatter)."""
  rng = np.random.default_rng(2)
  two, pooled = 0, 0
  for t in range(100):
    groups = [rng.normal(1.0 + rng.normal(0, 0.5), 1.0, 50) for _ in range(10)]
    iv = intervals.interval(groups, "mean", resamples=300, seed=t)
    assert iv.seeds == 10 and iv.samples == 50 and len(iv.per_seed) == 10
    two += iv.low <= 1.0 <= iv.high
    one = intervals.interval([np.concatenate(groups)], "mean", resamples=300, seed=t)
    pooled += one.low <= 1.0 <= one.high
  assert two >= 82, two
  assert pooled <= 60, pooled


def test_interval_median_nonfinite_and_errors():
  iv = intervals.interval([np.array([1.0, 2.0, 3.0, np.nan, np.inf])], "median")
  assert iv.estimate == 2.0 and iv.samples == 3 and 1.0 <= iv.low <= iv.high <= 3.0
  assert intervals.interval([np.array([np.nan])], "mean") is None
  with pytest.raises(ValueError):
    intervals.interval([np.ones(3)], "mode")
  bools = intervals.interval([np.array([True] * 9 + [False])], "mean")
  assert bools.estimate == pytest.approx(0.9)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
  """A tiny digits study under seeds 0 and 1, every build counted by node key."""
  from pipelines import seeds as seeds_pipeline
  from tfhull import study
  from tfhull.attacks import AttackConfig
  from tfhull.study import steps
  from tfhull.training import TrainConfig
  root = str(tmp_path_factory.mktemp("seeds"))
  built = collections.Counter()
  originals = {name: getattr(steps, name) for name in ("data", "train", "attack", "features",
                                                       "hull", "analyze", "report")}

  def counting(name):
    def fn(node, *args):
      built[node.key] += 1
      return originals[name](node, *args)
    return fn
  mp = pytest.MonkeyPatch()
  for name in originals:
    mp.setattr(steps, name, counting(name))
  cfg = study.StudyConfig(
      data=study.DataConfig(dataset="digits", train_size=120, test_size=40,
                            classes=("0", "1", "2", "3", "4")),
      train=study.TrainStepConfig(model="mlp:width=16,depth=1",
                                  training=TrainConfig(epochs=3, batch_size=64)),
      attack=study.AttackStepConfig(attack=AttackConfig(
          attacks=("fgm",), norms=("2",), eps_l2=(1.0,), minimal=False, flip_points=False)),
      features=study.FeaturesConfig(representations=("pixel",)),
      hull=study.HullConfig(query_splits=("test",), per_class=False, working_set_size=32),
      analyze=study.AnalyzeConfig(ray_points=5, shift_samples=30),
      report=study.ReportConfig(image_rows=0),
      run=study.RunConfig(output_root=root))
  try:
    cfgs = seeds_pipeline.configs(cfg, [0, 1], ["analyze"])
    dones = seeds_pipeline.run_all(cfgs, [0, 1], ["analyze"])
    page = seeds_pipeline.write_page([0, 1], dones, cfg.run, "two seeds")
  finally:
    mp.undo()
  return cfg, cfgs, dones, page, built


def test_seed_independent_artifacts_are_built_once(two_seeds):
  cfg, cfgs, dones, _, built = two_seeds
  assert [c.train.training.seed for c in cfgs] == [0, 1]
  assert [c.attack.attack.seed for c in cfgs] == [0, 1]
  assert all(c.data == cfg.data for c in cfgs)  # The data seed is kept.
  for key in ("data", "features/pixel", "hull/pixel/test"):
    assert built[key] == 1, (key, built)
    assert dones[0][key].uri == dones[1][key].uri
  for key in ("train", "attack", "analyze"):
    assert built[key] == 2, (key, built)
    assert dones[0][key].uri != dones[1][key].uri


def test_seeds_page_holds_intervals_over_both_seeds(two_seeds):
  from tfhull import io
  _, _, dones, page, _ = two_seeds
  iv = io.read_json(page.path("metrics.json"))["intervals"]
  acc = iv["test_accuracy"]
  assert acc["seeds"] == 2 and acc["samples"] == 40
  per_seed = [float(np.mean(io.load_npz(d["analyze"].path("analysis.npz"))["error_correct"]))
              for d in dones]
  assert acc["per_seed"] == pytest.approx(per_seed)
  assert acc["estimate"] == pytest.approx(np.mean(per_seed))
  assert acc["low"] <= acc["estimate"] <= acc["high"]
  # Per-sample worst-case robustness reproduces the attack step's own summary, seed by seed.
  for key, w in iv["worst_case_robust_accuracy"].items():
    norm, eps = key.split("/")
    assert w["per_seed"] == pytest.approx(
        [d["attack"].summary["worst_case_robust_accuracy"][norm][eps] for d in dones])
  # The pixel hull does not depend on the seed: identical per-seed values.
  pix = iv["median_dhull_over_dnn"]["pixel"]
  assert pix["per_seed"][0] == pix["per_seed"][1]
  page_html = io.read_bytes(page.path("report.html")).decode()
  assert "95%" in page_html and "seed 1" in page_html
  # Within one seed: the bootstrap over its test samples only.
  from tfhull.study import seeds
  single = seeds.headline_intervals([dones[1]])["test_accuracy"]
  assert single["seeds"] == 1 and single["estimate"] == pytest.approx(per_seed[1])


def test_interval_section_states_estimate_interval_and_what_it_is_over():
  from tfhull.report import intervals as report_intervals
  iv = {"test_accuracy": {"estimate": 0.9, "low": 0.85, "high": 0.94, "statistic": "mean",
                          "seeds": 1, "samples": 450, "per_seed": [0.9], "level": 0.95},
        "median_dhull_over_dnn": {"pixel": {"estimate": 0.61, "low": 0.6, "high": 0.63,
                                            "statistic": "median", "seeds": 3, "samples": 450,
                                            "per_seed": [0.6, 0.61, 0.62], "level": 0.95}}}
  rows = report_intervals.interval_section(iv, {"pixel": 64}).tables[0].rows
  assert rows[0][:3] == ("Test accuracy", "90.0%", "85.0% to 94.0%")
  assert "one seed" in rows[0][3]
  assert rows[1][1:3] == ("0.61", "0.6 to 0.63") and "3 seeds x 450" in rows[1][3]


def test_analyze_measures_shift_detection_for_corrupted_and_held_out_inputs(two_seeds):
  """The analyze step's shift detection (tfhull.analysis.shift) on the tiny study: a pixel-space
  row per score for shuffled pixels and for the five classes --classes left out."""
  from tfhull import io
  _, _, dones, _, _ = two_seeds
  sh = io.read_json(dones[0]["analyze"].path("analysis.json"))["shift"]
  assert sh["spaces"] == ["pixel"]
  assert sorted(sh["sets"]) == ["held_out_classes", "shuffled_pixels"]
  for d in sh["sets"].values():
    assert d["samples_shifted"] == 30 and d["samples_in_distribution"] == 40
    assert {"pixel/d_hull", "pixel/d_hull_over_d_nn", "max_softmax"} <= set(d["auroc"])
    assert all(0 <= v <= 1 for v in d["auroc"].values() if v is not None)
