"""`python -m pipelines.sweep`: one pipeline run per grid point, shared artifacts, one report."""

import os
import subprocess
import sys

import pytest

from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train_size=200", "--test_size=40", "--epochs=40", "--attacks=fgm",
        "--attack_norms=2", "--attack_bisection_steps=4", "--hull_query_splits=test",
        "--nohull_per_class", "--ray_points=11", "--representations=pixel,layer:features"]


def test_sweep_over_widths(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "pipelines.sweep", "--flagfile=configs/digits_mlp.flags",
       f"--output_root={tmp_path}", *TINY, "--sweep=model=mlp:width=4,depth=1|mlp:width=64,depth=1"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  sweep_dir, = [os.path.join(tmp_path, "sweep", d) for d in os.listdir(tmp_path / "sweep")]
  art = artifacts.load(sweep_dir, "SweepReport")
  assert f"Sweep report: {art.path('report.html')}" in out.stdout
  # The data artifact is shared by both points; each point has its own model.
  assert len(os.listdir(tmp_path / "data")) == 1 and len(os.listdir(tmp_path / "train")) == 2
  assert out.stderr.count("data: cache hit") == 1
  # The pixel space needs only the data: its features and test-set hull are computed once.
  hulls = [artifacts.load(os.path.join(tmp_path, "hull", d)) for d in os.listdir(tmp_path / "hull")]
  assert sorted(h.params["space"] for h in hulls) == ["layer:features", "layer:features", "pixel"]
  assert len(os.listdir(tmp_path / "features")) == 3
  points = io.read_json(art.path("sweep.json"))["points"]
  assert [p["assignment"]["model"] for p in points] == ["mlp:width=4,depth=1",
                                                         "mlp:width=64,depth=1"]
  # Parameter counts: (64 + 1) w + (w + 1) 10.
  assert [p["metrics"]["params"] for p in points] == [65 * 4 + 5 * 10, 65 * 64 + 65 * 10]
  for p, name in zip(points, ("point000", "point001")):
    analyze = artifacts.load(art.metadata["inputs"][name]["uri"])
    train = artifacts.load(analyze.metadata["inputs"]["train"]["uri"])
    assert p["metrics"]["test_accuracy"] == train.summary["test_accuracy"]
  assert art.summary["figures"] == 2  # The sweep panels and the training curves.
  html = open(art.path("report.html")).read()
  assert html.count("data:image/png;base64,") == 2 and "mlp:width=64,depth=1" in html


def test_sweep_axes_are_checked():
  from pipelines import sweep  # pylint: disable=g-import-not-at-top
  assert sweep.parse_axes(["model=mlp:width=8|mlp:width=16", "label_noise=0|0.5"]) == [
      ("model", ["mlp:width=8", "mlp:width=16"]), ("label_noise", ["0", "0.5"])]
  for spec, message in (("width=8|16", "not a flag"), ("model", "must be FLAG=V1"),
                        ("model=|", "lists no values"), ("output_root=a|b", "not a flag")):
    with pytest.raises(UserError, match=message):
      sweep.parse_axes([spec])
  with pytest.raises(UserError, match="twice"):
    sweep.parse_axes(["seed=0|1", "seed=2"])
  with pytest.raises(UserError, match="no --sweep axis"):
    sweep.parse_axes([])
