"""The artifact runner: fingerprints, cache, atomic commit, --force, safe loading."""

import json
import os

import numpy as np
import pytest

from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError


def _build(value, calls):
  def build(tmp):
    calls.append(tmp)
    io.save_npz(os.path.join(tmp, "x.npz"), {"x": np.full(3, value)})
    return {"value": value}
  return build


def _run(root, value=1, calls=None, force=False, params=None, inputs=None):
  return artifacts.run("step", "1", "Thing", params or {"v": value}, inputs or {}, str(root),
                       _build(value, calls if calls is not None else []), force=force)


def test_cache_hit_and_param_change(tmp_path):
  calls = []
  a = _run(tmp_path, 1, calls)
  b = _run(tmp_path, 1, calls)
  assert a.uri == b.uri and len(calls) == 1
  c = _run(tmp_path, 2, calls)
  assert c.uri != a.uri and len(calls) == 2
  assert a.metadata["status"] == "complete" and a.summary == {"value": 1}
  assert set(a.metadata["files"]) == {"x.npz"}


def test_fingerprint_depends_on_inputs_and_version(tmp_path):
  up1, up2 = _run(tmp_path / "u", 1), _run(tmp_path / "u", 2)
  fp = lambda inp, v="1": artifacts.fingerprint("step", v, {"v": 0}, inp)
  assert fp({"data": up1}) != fp({"data": up2})
  assert fp({"data": up1}) != fp({"data": up1}, v="2")
  assert fp({"data": up1}) == fp({"data": up1})


def test_force_keeps_the_replaced_artifact(tmp_path):
  calls = []
  a = _run(tmp_path, 1, calls)
  b = _run(tmp_path, 1, calls, force=True)
  assert a.uri == b.uri and len(calls) == 2
  aside = [d for d in os.listdir(tmp_path / "step") if ".replaced-" in d]
  assert len(aside) == 1
  artifacts.load(str(tmp_path / "step" / aside[0]).rsplit(".replaced-", 1)[0])


def test_failed_build_leaves_nothing(tmp_path):
  def build(tmp):
    io.save_npz(os.path.join(tmp, "x.npz"), {"x": np.zeros(2)})
    raise KeyboardInterrupt  # As if the run were interrupted mid-write.
  with pytest.raises(KeyboardInterrupt):
    artifacts.run("step", "1", "Thing", {}, {}, str(tmp_path), build)
  assert not (tmp_path / "step").exists()


def test_leftover_partial_directory_is_ignored_and_run_completes(tmp_path):
  fp = artifacts.fingerprint("step", "1", {"v": 1}, {})
  partial = tmp_path / "step" / (fp[:16] + ".tmp-999-deadbeef")
  partial.mkdir(parents=True)
  (partial / "x.npz").write_bytes(b"half")
  with pytest.raises(UserError, match="not a finished artifact"):
    artifacts.load(str(partial))
  art = _run(tmp_path, 1)
  assert artifacts.load(art.uri).summary == {"value": 1}
  assert not partial.exists()  # The dead run's temporary is removed under the lock.
  assert os.listdir(tmp_path / "step") == [os.path.basename(art.uri)]  # Lock released.


def test_tampered_or_incomplete_artifacts_are_rejected(tmp_path):
  art = _run(tmp_path, 1)
  meta_path = os.path.join(art.uri, "metadata.json")
  meta = json.load(open(meta_path))
  # Payload changed behind the metadata's back.
  io.save_npz(os.path.join(art.uri, "x.npz"), {"x": np.zeros(3)})
  with pytest.raises(UserError, match="checksum"):
    artifacts.load(art.uri)
  # Params edited: the fingerprint no longer matches.
  json.dump(dict(meta, params={"v": 5}), open(meta_path, "w"))
  with pytest.raises(UserError, match="fingerprint"):
    artifacts.load(art.uri)
  json.dump(dict(meta, status="running"), open(meta_path, "w"))
  with pytest.raises(UserError, match="incomplete"):
    artifacts.load(art.uri)
  open(meta_path, "w").write("{not json")
  with pytest.raises(UserError, match="not valid JSON"):
    artifacts.load(art.uri)
  with pytest.raises(UserError, match="expected Dataset"):
    artifacts.load(_run(tmp_path / "other", 1).uri, "Dataset")


def test_unwritable_output_root(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(UserError, match="writable --output_root"):
    _run(blocker / "root", 1)


def test_npz_loading_refuses_pickles(tmp_path):
  path = tmp_path / "obj.npz"
  np.savez(path, x=np.array([{"a": 1}], dtype=object))
  with pytest.raises(UserError, match="pickled"):
    io.load_npz(str(path))


def test_resumable_build_keeps_its_work_dir_only_across_interruptions(tmp_path):
  seen = []

  def build(tmp, work, fail=None):
    seen.append(work)
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "progress"), "a") as f:
      f.write("x")
    if fail is not None:
      raise fail
    io.write_json(os.path.join(tmp, "out.json"), {"steps": len(open(os.path.join(work, "progress")).read())})
    return {}

  def run(fail=None):
    return artifacts.run("step", "1", "Thing", {}, {}, str(tmp_path),
                         lambda tmp, work: build(tmp, work, fail), resumable=True)

  with pytest.raises(KeyboardInterrupt):
    run(KeyboardInterrupt())
  assert os.path.exists(os.path.join(seen[0], "progress"))  # Kept for the next run.
  art = run()
  assert seen[1] == seen[0] and seen[0] == art.uri + ".work"
  assert io.read_json(art.path("out.json")) == {"steps": 2}  # Resumed from the first run's work.
  assert not os.path.exists(seen[0])  # Removed once committed.
  with pytest.raises(ValueError):
    artifacts.run("step", "1", "Thing", {"other": 1}, {}, str(tmp_path),
                  lambda tmp, work: build(tmp, work, ValueError("bad")), resumable=True)
  assert not os.path.exists(seen[2])  # An error, not an interruption: nothing to resume.


def test_tensorboard_logs_are_committed_but_not_checksummed(tmp_path):
  def build(tmp):
    io.save_npz(os.path.join(tmp, "x.npz"), {"x": np.zeros(2)})
    os.makedirs(os.path.join(tmp, "tensorboard", "train"))
    with open(os.path.join(tmp, "tensorboard", "train", "events.out.tfevents.1.host"), "wb") as f:
      f.write(b"wall-clock bytes")
    return {}
  a = artifacts.run("step", "1", "Thing", {}, {}, str(tmp_path), build)
  assert set(a.metadata["files"]) == {"x.npz"}
  assert a.metadata["logs"] == ["tensorboard/train/events.out.tfevents.1.host"]
  log = os.path.join(a.uri, a.metadata["logs"][0])
  with open(log, "ab") as f:  # A rewritten event file is not a corrupt artifact.
    f.write(b"more")
  artifacts.load(a.uri)
  meta = dict(a.metadata, logs="tensorboard")
  with pytest.raises(UserError, match="'logs' is not a list"):
    artifacts._check_metadata(a.uri, meta)  # pylint: disable=protected-access
