"""`python -m pipelines.full` and the components as users run them: end to end, cache, bad input."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tfhull import artifacts
from tfhull import io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--train_size=300", "--test_size=60", "--hull_working_set=64"]


def _cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  start = time.time()
  out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=timeout)
  return out, time.time() - start


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("run")
  out, _ = _cli("pipelines.full", "--flagfile=configs/digits_mlp.flags", f"--output_root={root}",
                *SMALL)
  assert out.returncode == 0, out.stderr[-3000:]
  return root, out


def test_full_pipeline_writes_complete_artifacts(pipeline_run):
  root, out = pipeline_run
  assert "Artifacts:" in out.stdout
  data_dir, = [os.path.join(root, "data", d) for d in os.listdir(os.path.join(root, "data"))]
  hull_dir, = [os.path.join(root, "hull", d) for d in os.listdir(os.path.join(root, "hull"))]
  assert data_dir in out.stdout and hull_dir in out.stdout
  data = artifacts.load(data_dir, "Dataset")
  hull = artifacts.load(hull_dir, "HullDistances")
  assert hull.metadata["inputs"]["data"]["fingerprint"] == data.fingerprint
  assert "--flagfile" not in hull.metadata["flags"] and "--hull_rel_tol" in hull.metadata["flags"]
  arrays = io.load_npz(os.path.join(hull_dir, "hull.npz"))
  assert arrays["distance"].shape == (60,)
  # The summary's numbers are the payload's numbers.
  assert hull.summary["queries"] == 60
  assert hull.summary["fraction_outside_certified"] == pytest.approx(arrays["outside"].mean())
  assert hull.summary["distance"]["50"] == pytest.approx(np.percentile(arrays["distance"], 50))
  assert np.all(arrays["lower_bound"] <= arrays["upper_bound"])
  assert arrays["class_upper_bound"].shape == (60, 10)
  np.testing.assert_allclose(
      arrays["own_class_distance"],
      arrays["class_upper_bound"][np.arange(60), arrays["query_labels"]])


def test_component_alone_reuses_the_cache(pipeline_run):
  root, _ = pipeline_run
  before = sorted(os.listdir(os.path.join(root, "hull")))
  out, _ = _cli("components.hull", "--flagfile=configs/digits_mlp.flags", f"--output_root={root}",
                *SMALL)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stderr.count("cache hit") == 2
  assert sorted(os.listdir(os.path.join(root, "hull"))) == before


@pytest.mark.parametrize("args,message", [
    (["--dataset=nope"], "tfhull: error: "),
    (["--classes=1,1"], "tfhull: error: "),
    (["--train_size=100000"], "tfhull: error: "),
    (["--flagfile=/no/such.flags"], "Unable to open flagfile"),
    (["--bogus_flag=1"], "Unknown command line flag 'bogus_flag'"),
    (["--hull_rel_tol=-1"], "hull_rel_tol"),
])
def test_bad_input_fails_fast_with_one_line(tmp_path, args, message):
  out, seconds = _cli("pipelines.full", f"--output_root={tmp_path / 'r'}", *args)
  assert out.returncode != 0
  assert message in out.stderr
  errors = [l for l in out.stderr.splitlines() if l.startswith(("tfhull: error", "FATAL"))]
  assert len(errors) == 1, out.stderr[-2000:]
  assert seconds < 60
  assert not os.path.exists(tmp_path / "r" / "data") or not os.listdir(tmp_path / "r" / "data")


def test_unwritable_output_root(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  out, _ = _cli("pipelines.full", f"--output_root={blocker}/root", *SMALL)
  assert out.returncode == 2
  assert "writable --output_root" in out.stderr
