"""The 2-D boundary-extension study on its smallest configuration."""

import dataclasses
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from matplotlib.path import Path

from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError
from tfhull.report import toy2d as toy2d_report
from tfhull.studies import toy2d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_hull_mask_and_window():
  rng = np.random.default_rng(0)
  pts = rng.uniform(0.2, 0.8, size=(50, 2))
  grid, extent = toy2d.window_grid(pts, 3.0, 30)
  assert grid.shape == (900, 2)
  width = pts[:, 0].max() - pts[:, 0].min()
  assert extent[1] - extent[0] == pytest.approx(3 * width, rel=1e-5)
  inside = toy2d.inside_hull(pts, grid)
  polygon = toy2d.hull_polygon(pts)
  np.testing.assert_array_equal(inside, Path(polygon).contains_points(grid))
  assert 0 < inside.mean() < 1 / 9 + 0.01  # The hull fits in the middle ninth of the window.


def test_regimes_parse_and_bad_ones_fail():
  r = toy2d.parse_regime("sgd:learning_rate=0.1,init_scale=2")
  assert r.optimizer == "sgd" and dict(r.overrides) == {"learning_rate": 0.1, "init_scale": 2.0}
  for bad, message in (("rmsprop", "unknown optimizer"), ("adam:lr=1", "KEY=VALUE"),
                       ("adam:learning_rate=x", "not a number")):
    with pytest.raises(UserError, match=message):
      toy2d.parse_regime(bad)


def test_disagreement_counts_inside_and_outside():
  a, b = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
  inside = np.array([True, True, False, False])
  assert toy2d.disagreement(a, b, inside) == {"inside": 0.5, "outside": 0.5}


def test_smallest_study_end_to_end(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "pipelines.toy2d", f"--output_root={tmp_path}", "--train_size=100",
       "--test_size=50", "--toy_widths=32,128", "--toy_regimes=adam,adam:init_scale=3",
       "--toy_epochs=600", "--toy_resolution=40", "--toy_learning_rate=0.02"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  art_dir, = [os.path.join(tmp_path, "toy2d", d) for d in os.listdir(tmp_path / "toy2d")]
  art = artifacts.load(art_dir, "Toy2dStudy")
  z = io.load_npz(art.path("toy2d.npz"))
  data = io.load_npz(os.path.join(art.metadata["inputs"]["data"]["uri"], "data.npz"))
  ok = z["train_accuracy"] == 1.0
  assert ok.sum() >= 2, z["train_accuracy"]
  # Interpolating models agree on every training point (they all predict its label).
  for i, j in zip(*np.nonzero(ok)):
    np.testing.assert_array_equal(z["train_predictions"][i, j], data["y_train"])
  # The reported disagreement is the grid's.
  summary = io.read_json(art.path("toy2d.json"))
  for pair in summary["pairs"]:
    a, b = z["labels"][tuple(pair["a"])], z["labels"][tuple(pair["b"])]
    expect = toy2d.disagreement(a, b, z["inside"])
    assert pair["inside"] == pytest.approx(expect["inside"])
    assert pair["outside"] == pytest.approx(expect["outside"])
  html = open(art.path("report.html")).read()
  assert html.count("data:image/png;base64,") == 2
  assert f"Report: {art.path('report.html')}" in out.stdout
  # Its own introduction, and a statement that matches its numbers.
  assert toy2d_report.INTRO[:60] in html and "adversarial examples" not in html
  fit = f"{int(ok.sum())} of {ok.size} models fit" if not ok.all() else "Every one of the"
  assert fit in html


def test_non_2d_data_is_refused(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-m", "pipelines.toy2d", f"--output_root={tmp_path}",
                        "--dataset=digits", "--toy_widths=4"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and "needs 2-D points" in out.stderr
  assert not os.path.exists(tmp_path / "toy2d")


def _fake_result(train_accuracy, by_width, by_regime):
  return types.SimpleNamespace(
      widths=(4, 16, 64, 256)[:len(by_width)], regimes=("adam", "sgd"),
      train_accuracy=np.array(train_accuracy),
      disagreement_by_width=dict(zip((4, 16, 64, 256), by_width)),
      disagreement_by_regime=dict(zip(("adam", "sgd"), by_regime)))


def test_statement_matches_the_numbers():
  d = lambda i, o: {"inside": i, "outside": o}
  mixed = _fake_result([[1.0, 1.0], [1.0, 0.9], [1.0, 1.0], [1.0, 1.0]],
                       [d(0.1, 0.3), d(None, None), d(0.2, 0.1), d(0.05, 0.4)],
                       [d(0.1, 0.2), d(0.1, 0.3)])
  text = toy2d_report.statement(mixed)
  assert text.startswith("7 of 8 models fit the training set; the others (width 16 / sgd")
  assert "Between regimes at the same width: mixed: the models disagree more outside the hull " \
      "than inside for 2 of 3 widths (4, 256), not for 64; not measured for 16" in text
  assert "Between widths under the same regime: at every regime measured (adam, sgd)" in text
  all_fit = _fake_result(np.ones((2, 2)), [d(0.1, 0.3), d(0.1, 0.2)], [d(0.3, 0.1), d(0.2, 0.1)])
  text = toy2d_report.statement(all_fit)
  assert text.startswith("Every one of the 4 models fits the training set.")
  assert "under the same regime: at no regime measured do the models disagree more" in text


def test_interpolation_warning_names_toy2d_flags(caplog):
  """A model that does not interpolate is reported with toy2d's own flags, not the train
  component's (`--until_interpolation`, `--epochs`)."""
  import logging  # pylint: disable=import-outside-toplevel
  from tfhull import training  # pylint: disable=import-outside-toplevel
  from tfhull.data import sources  # pylint: disable=import-outside-toplevel
  ds = sources.load_toy2d("moons", seed=0)
  ds = dataclasses.replace(ds, x_train=ds.x_train[:40], y_train=ds.y_train[:40],
                           train_index=ds.train_index[:40], x_test=ds.x_test[:10],
                           y_test=ds.y_test[:10], test_index=ds.test_index[:10],
                           y_train_clean=None)
  caplog.set_level(logging.WARNING)
  toy2d.run_study(ds, widths=(1,), regimes=(toy2d.parse_regime("adam"),), resolution=8,
                  base=training.TrainConfig(epochs=1, batch_size=40, until_interpolation=True))
  warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  assert "toy2d" in warned and "--toy_epochs" in warned and "--toy_widths" in warned, warned
  assert "--toy_learning_rate" in warned and "--until_interpolation" not in warned, warned
