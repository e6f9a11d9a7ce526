"""Tests for the data component (components/data.py): flags -> cached Dataset artifact."""

import json
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

import tfhull.data
from components import common
from tfhull import artifacts
from tfhull.errors import UserError

FLAGS = flags.FLAGS


@pytest.fixture(autouse=True)
def _flags(tmp_path):
  common.define_all()
  common.define_all()  # Idempotent: the pipeline may have defined them already.
  if not FLAGS.is_parsed():
    FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(output_root=str(tmp_path / "runs"), dataset="digits", train_size=100,
                           test_size=50, classes=[], label_noise=0.0, corruption="none", seed=0,
                           force=[], data_artifact=None):
    yield


@pytest.fixture
def count_builds(monkeypatch):
  calls = []
  real = tfhull.data.prepare

  def counting(*args, **kwargs):
    calls.append(kwargs)
    return real(*args, **kwargs)

  monkeypatch.setattr(tfhull.data, "prepare", counting)
  return calls


def _run():
  """The data step as `python -m components.data` runs it: flags -> StudyConfig -> graph."""
  return common.run_study(common.study_config(), ["data"], show=False)["data"]


def _tree(root):
  """Every path under `root`, relative, sorted ([] if it does not exist)."""
  out = []
  for dirpath, dirs, files in os.walk(root):
    out += [os.path.relpath(os.path.join(dirpath, n), root) for n in dirs + files]
  return sorted(out)


def test_flags_defaults():
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(["prog"])
    assert (FLAGS.dataset, FLAGS.train_size, FLAGS.label_noise, FLAGS.corruption) == (
        "digits", 0, 0.0, "none")
    assert FLAGS.download is False and FLAGS.classes == [] and FLAGS.data_dir is None
    FLAGS(["prog", "--classes=3,8", "--label_noise=0.2", "--corruption=shuffled_pixels"])
    assert FLAGS.classes == ["3", "8"] and FLAGS.corruption == "shuffled_pixels"
    with pytest.raises(flags.IllegalFlagValueError):
      FLAGS(["prog", "--label_noise=1.5"])
    with pytest.raises(flags.IllegalFlagValueError):
      FLAGS(["prog", "--corruption=blur"])


def test_run_builds_then_hits_cache(count_builds, tmp_path):
  first = _run()
  assert first.type == "Dataset" and len(count_builds) == 1
  assert first.summary["train_shape"] == [100, 8, 8, 1]
  ds = tfhull.data.load(first.uri)
  assert tfhull.data.checksum(ds) == first.summary["checksum"]
  assert artifacts.load(first.uri, "Dataset").fingerprint == first.fingerprint
  second = _run()
  assert second.uri == first.uri and len(count_builds) == 1  # No rebuild.
  assert second.metadata["created"] == first.metadata["created"]
  assert first.params["seed"] == 0 and "download" not in first.params


def test_changed_param_gives_new_artifact(count_builds):
  first = _run()
  with flagsaver.flagsaver(label_noise=0.25, classes=["3", "8"]):
    noisy = _run()
  assert noisy.uri != first.uri and len(count_builds) == 2
  assert noisy.summary["label_noise"] == 0.25 and noisy.summary["class_names"] == ["3", "8"]
  with flagsaver.flagsaver(seed=1):
    assert _run().uri not in (first.uri, noisy.uri)


def test_force_rebuilds(count_builds):
  first = _run()
  with flagsaver.flagsaver(force=["data"]):
    again = _run()
  assert again.uri == first.uri and len(count_builds) == 2


def test_override_artifact(count_builds):
  built = _run()
  with flagsaver.flagsaver(data_artifact=built.uri, dataset="toy2d:moons"):
    given = _run()
  assert given.uri == built.uri and len(count_builds) == 1


def test_bad_options_create_nothing(tmp_path):
  with flagsaver.flagsaver(dataset="nope"):
    with pytest.raises(UserError, match="valid sources"):
      _run()
  with flagsaver.flagsaver(dataset=f"npz:{tmp_path / 'missing.npz'}"):
    with pytest.raises(UserError, match="file does not exist"):
      _run()
  with flagsaver.flagsaver(classes=["3"]):
    with pytest.raises(UserError, match="at least 2"):
      _run()
  assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dataset_kwargs,needle", [
    ({"classes": ["3", "42"]}, "unknown class '42'"),
    ({"train_size": 5000}, "1347 train examples available"),
    ("nan", "NaN or Inf"),
])
def test_failing_build_leaves_no_artifact(tmp_path, dataset_kwargs, needle):
  if dataset_kwargs == "nan":
    x = np.full((4, 2, 2), np.nan)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.arange(4) % 2, x_test=x,
             y_test=np.arange(4) % 2)
    dataset_kwargs = {"dataset": f"npz:{tmp_path / 'bad.npz'}", "train_size": 0, "test_size": 0}
  with flagsaver.flagsaver(**dataset_kwargs):
    with pytest.raises(UserError, match=needle):
      _run()
  # No artifact, no temporary directory; at most the empty step directory `data/` remains.
  assert _tree(tmp_path / "runs") in ([], ["data"])


def test_metadata_records_flags_and_summary():
  art = _run()
  with open(os.path.join(art.uri, "metadata.json")) as f:
    meta = json.load(f)
  assert meta["status"] == "complete" and "--dataset=digits" in meta["flags"]
  assert sorted(meta["files"]) == ["data.npz", "dataset.json"]
  assert meta["summary"]["test_counts"] == [5] * 10
  assert common.INPUT_DIRS["data"].value is None
