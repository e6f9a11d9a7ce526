"""Trust nothing on disk, fail before any work, resume to the same numbers, survive concurrent runs.

Each test tampers with, interrupts or races the library (`artifacts.run` with small build
functions, `training.train` with a tiny model) the way issue 16 measured, and checks the outcome:
a one-line UserError naming the fix, an untouched link target, one build for two runs, identical
weights after a resume, nothing a reader accepts after an interrupted object-store commit.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(value, calls):
  def build(tmp):
    calls.append(tmp)
    io.save_npz(io.join(tmp, "x.npz"), {"distance": np.full(3, float(value))})
    io.write_json(io.join(tmp, "index.json"), {"entries": [{"file": "x.npz"}]})
    return {"value": value}
  return build


def _run(root, value=1, calls=None, **kw):
  return artifacts.run("step", "1", "Thing", {"v": value}, {}, str(root),
                       _build(value, calls if calls is not None else []), **kw)


def _one_line_error(fn, match):
  with pytest.raises(UserError, match=match) as e:
    fn()
  msg = str(e.value)
  assert "\n" not in msg and "--force" in msg, msg
  return msg


def _rewrite_metadata(uri, **changes):
  """Edits metadata.json the way an attacker would: fields changed, checksum recomputed."""
  path = os.path.join(uri, artifacts.METADATA)
  meta = json.load(open(path))
  meta.update(changes)
  meta["checksum"] = artifacts._metadata_checksum(meta)  # pylint: disable=protected-access
  json.dump(meta, open(path, "w"))


def _dead_pid():
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  return p.pid


# ---------------------------------------------------------------------------------------------
# Verification on every use.

def test_cache_hit_refuses_an_edited_payload_until_force(tmp_path):
  calls = []
  art = _run(tmp_path, 1, calls)
  io.save_npz(os.path.join(art.uri, "x.npz"), {"distance": np.full(3, 10.0)})  # distances x10
  msg = _one_line_error(lambda: _run(tmp_path, 1, calls), "x.npz does not match its checksum")
  assert art.uri in msg and len(calls) == 1  # Refused, not silently rebuilt.
  again = _run(tmp_path, 1, calls, force=True)
  assert len(calls) == 2 and artifacts.load(again.uri).uri == art.uri
  kept = [d for d in os.listdir(tmp_path / "step") if ".replaced-" in d]
  assert len(kept) == 1  # The tampered artifact is kept aside, not deleted.


def test_cache_hit_refuses_an_edited_summary(tmp_path):
  art = _run(tmp_path, 1)
  path = os.path.join(art.uri, artifacts.METADATA)
  meta = json.load(open(path))
  meta["summary"]["value"] = 99
  json.dump(meta, open(path, "w"))
  _one_line_error(lambda: _run(tmp_path, 1), "edited")
  _one_line_error(lambda: artifacts.load(art.uri), "edited")


@pytest.mark.parametrize("name", ["../../../outside/evil.npz", "/etc/hostname", "/dev/zero",
                                  "./x.npz", "sub//x.npz", "a\\..\\b", ""])
def test_metadata_file_names_must_stay_inside_the_artifact(tmp_path, name):
  (tmp_path / "outside").mkdir()
  np.savez(tmp_path / "outside" / "evil.npz", distance=np.zeros(3))
  art = _run(tmp_path / "root", 1)
  files = {name: hashlib.sha256(b"").hexdigest()}
  _rewrite_metadata(art.uri, files=files)
  _one_line_error(lambda: artifacts.load(art.uri), "not a plain relative path")
  _one_line_error(lambda: _run(tmp_path / "root", 1), "not a plain relative path")


@pytest.mark.parametrize("kind", ["symlink_to_dev_zero", "fifo", "symlinked_dir"])
def test_links_and_special_files_are_refused_before_opening(tmp_path, kind):
  art = _run(tmp_path, 1)
  target = os.path.join(art.uri, "p")
  if kind == "symlink_to_dev_zero":
    os.symlink("/dev/zero", target)
    name = "p"
  elif kind == "fifo":
    os.mkfifo(target)  # Opening it would block forever.
    name = "p"
  else:
    os.symlink("/etc", target)
    name = "p/hostname"
  _rewrite_metadata(art.uri, files={name: hashlib.sha256(b"").hexdigest()})
  start = time.time()
  _one_line_error(lambda: artifacts.load(art.uri), "link|not a regular file")
  assert time.time() - start < 5


@pytest.mark.parametrize("field,value,match", [
    ("files", ["x.npz"], "field 'files' is a list"),
    ("inputs", [], "field 'inputs' is a list"),
    ("params", None, "field 'params' is a NoneType"),
    ("files", {"x.npz": 5}, "not a sha256 checksum"),
    ("inputs", {"data": {"uri": "/x"}}, "input 'data' has no valid fingerprint"),
])
def test_malformed_metadata_is_one_line(tmp_path, field, value, match):
  art = _run(tmp_path, 1)
  _rewrite_metadata(art.uri, **{field: value})
  _one_line_error(lambda: artifacts.load(art.uri), match)
  _one_line_error(lambda: _run(tmp_path, 1), match)


def test_missing_field_and_non_object_metadata(tmp_path):
  art = _run(tmp_path, 1)
  path = os.path.join(art.uri, artifacts.METADATA)
  meta = json.load(open(path))
  del meta["files"]
  json.dump(meta, open(path, "w"))
  _one_line_error(lambda: artifacts.load(art.uri), "lacks field 'files'")
  json.dump([meta], open(path, "w"))
  _one_line_error(lambda: artifacts.load(art.uri), "holds a list")


def test_artifact_of_other_params_under_this_fingerprint_is_refused(tmp_path):
  calls = []
  default = _run(tmp_path, 1, calls)
  other = _run(tmp_path, 300, calls)  # As if built with --train_size=300.
  os.rename(default.uri, default.uri + ".moved")
  os.rename(other.uri, default.uri)
  msg = _one_line_error(lambda: _run(tmp_path, 1, calls), "other params")
  assert default.uri in msg and len(calls) == 2
  _one_line_error(lambda: artifacts.load(default.uri), "other params")  # Also for plain loads.


def test_index_file_entries_resolve_only_to_recorded_payload_files(tmp_path):
  art = _run(tmp_path / "root", 1)
  entry = io.read_json(art.path("index.json"))["entries"][0]["file"]
  assert artifacts.payload_path(art, entry) == os.path.join(art.uri, "x.npz")
  assert artifacts.payload_path(art.uri, entry) == os.path.join(art.uri, "x.npz")
  (tmp_path / "outside").mkdir()
  np.savez(tmp_path / "outside" / "evil.npz", distance=np.zeros(3))
  for bad in ("../../../outside/evil.npz", "/etc/hostname", ["x.npz"]):
    _one_line_error(lambda b=bad: artifacts.payload_path(art, b), "not a plain relative path")
  np.savez(os.path.join(art.uri, "extra.npz"), distance=np.zeros(3))  # Dropped in, unrecorded.
  _one_line_error(lambda: artifacts.payload_path(art, "extra.npz"), "not one of its recorded")
  with pytest.raises(UserError, match="not a plain relative path"):
    art.path("../escape")
  # Plain directories (not artifacts): io.confined_path has the same name and link checks.
  assert io.confined_path(art.uri, "x.npz") == os.path.join(art.uri, "x.npz")
  with pytest.raises(UserError, match="not a plain relative path"):
    io.confined_path(art.uri, "../../outside/evil.npz")


def test_the_digest_cache_sees_rewrites(tmp_path):
  art = _run(tmp_path, 1)
  artifacts.load(art.uri)
  path = os.path.join(art.uri, "x.npz")
  data = open(path, "rb").read()
  st = os.stat(path)
  with open(path, "r+b") as f:  # Same size, same mtime: only the ctime tells.
    f.seek(len(data) // 2)
    f.write(bytes([data[len(data) // 2] ^ 1]))
  os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
  _one_line_error(lambda: artifacts.load(art.uri), "checksum")


# ---------------------------------------------------------------------------------------------
# Links, temporaries, locks.

def test_symlinked_work_directory_leaves_its_target_intact(tmp_path):
  target = tmp_path / "precious"
  target.mkdir()
  (target / "keep.txt").write_text("data")
  fp = artifacts.fingerprint("step", "1", {"v": 1}, {})
  (tmp_path / "root" / "step").mkdir(parents=True)
  work = tmp_path / "root" / "step" / (fp[:16] + ".work")
  os.symlink(target, work)
  built = []

  def build(tmp, work_dir):
    built.append(work_dir)
    return {}

  for _ in range(2):
    with pytest.raises(UserError, match="symbolic link"):
      artifacts.run("step", "1", "Thing", {"v": 1}, {}, str(tmp_path / "root"), build,
                    resumable=True)
  assert not built and (target / "keep.txt").read_text() == "data"
  # Removal never follows a link either.
  io.remove(str(work))
  assert not os.path.lexists(work) and (target / "keep.txt").read_text() == "data"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
  pid, host = _dead_pid(), artifacts._HOST  # pylint: disable=protected-access
  step = tmp_path / "step"
  step.mkdir()
  fp1 = artifacts.fingerprint("step", "1", {"v": 1}, {})[:16]
  fp2 = artifacts.fingerprint("step", "1", {"v": 2}, {})[:16]
  dead_same = step / f"{fp1}.tmp-{pid}@{host}-deadbeef"
  dead_other = step / f"{fp2}.tmp-{pid}@{host}-deadbeef"
  old_format = step / f"{fp1}.tmp-{pid}-0badf00d"
  live_other = step / f"{fp2}.tmp-{os.getpid()}@{host}-12345678"
  for d in (dead_same, dead_other, old_format, live_other):
    d.mkdir()
    (d / "x.npz").write_bytes(b"half")
  link_target = tmp_path / "target"
  link_target.mkdir()
  (link_target / "f").write_text("keep")
  linked = step / f"{fp2}.tmp-{pid}@{host}-aaaaaaaa"
  os.symlink(link_target, linked)
  _run(tmp_path, 1)
  left = sorted(os.listdir(step))
  assert left == sorted([fp1, live_other.name]), left
  assert (link_target / "f").read_text() == "keep"


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
  fp = artifacts.fingerprint("step", "1", {"v": 1}, {})[:16]
  (tmp_path / "step").mkdir()
  lock = tmp_path / "step" / f"{fp}.lock"
  lock.write_text(json.dumps({"pid": _dead_pid(), "host": artifacts._HOST}))  # pylint: disable=protected-access
  calls = []
  _run(tmp_path, 1, calls)
  assert len(calls) == 1 and not lock.exists()


def test_lock_of_a_reused_pid_is_stale(tmp_path):
  sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    fp = artifacts.fingerprint("step", "1", {"v": 1}, {})[:16]
    (tmp_path / "step").mkdir()
    lock = tmp_path / "step" / f"{fp}.lock"
    # A live pid, but not the process that took the lock (it started at another time).
    lock.write_text(json.dumps({"pid": sleeper.pid, "host": artifacts._HOST, "start": "1"}))  # pylint: disable=protected-access
    calls = []
    _run(tmp_path, 1, calls, lock_timeout=5.0)
    assert len(calls) == 1 and not lock.exists()
  finally:
    sleeper.kill()
    sleeper.wait()


def test_live_lock_makes_a_second_run_wait_and_time_out(tmp_path):
  sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    fp = artifacts.fingerprint("step", "1", {"v": 1}, {})[:16]
    (tmp_path / "step").mkdir()
    lock = tmp_path / "step" / f"{fp}.lock"
    lock.write_text(json.dumps({"pid": sleeper.pid, "host": artifacts._HOST}))  # pylint: disable=protected-access
    calls = []
    start = time.time()
    with pytest.raises(UserError, match=f"held by pid {sleeper.pid}.*delete the lock file"):
      _run(tmp_path, 1, calls, lock_timeout=1.0)
    assert 1.0 <= time.time() - start < 10 and not calls and lock.exists()
    # Another host's lock is never judged stale from here (its pid means nothing locally).
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere"}))
    with pytest.raises(UserError, match="held by pid"):
      _run(tmp_path, 1, calls, lock_timeout=0.5)
  finally:
    sleeper.kill()
    sleeper.wait()


_RACER = textwrap.dedent("""
    import json, os, sys, time
    from tfhull import artifacts, io
    root, sync, me = sys.argv[1:4]
    open(os.path.join(sync, "ready-" + me), "w").close()
    while sum(f.startswith("ready-") for f in os.listdir(sync)) < 2:
      time.sleep(0.01)
    def build(tmp, work):
      open(os.path.join(sync, "build-" + me), "w").close()
      os.makedirs(work)  # Fails if another run shares the work directory.
      time.sleep(3)
      io.write_json(os.path.join(tmp, "out.json"), {"by": me})
      return {"by": me}
    art = artifacts.run("step", "1", "Thing", {"v": 1}, {}, root, build, resumable=True)
    print(json.dumps({"uri": art.uri, "by": art.summary["by"]}))
""")


def test_two_concurrent_runs_build_once_and_both_succeed(tmp_path):
  root, sync = tmp_path / "root", tmp_path / "sync"
  sync.mkdir()
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(root), str(sync), me], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for me in ("a", "b")]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  assert results[0] == results[1]  # Same artifact, built by one of them.
  assert len([f for f in os.listdir(sync) if f.startswith("build-")]) == 1
  assert os.listdir(root / "step") == [os.path.basename(results[0]["uri"])]  # No .replaced-.
  assert not any("--force" in err for _, err in outs)
  artifacts.load(results[0]["uri"])


_VICTIM = textwrap.dedent("""
    import os, sys, time
    from tfhull import artifacts, io
    root, flag = sys.argv[1:3]
    def build(tmp):
      io.save_npz(os.path.join(tmp, "x.npz"), {"distance": [1.0]})
      open(flag, "w").close()
      time.sleep(600)
    artifacts.run("step", "1", "Thing", {"v": 1}, {}, root, build)
""")


def test_a_run_killed_mid_build_leaves_nothing_that_blocks_the_next(tmp_path):
  root, flag = tmp_path / "root", tmp_path / "building"
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  victim = subprocess.Popen([sys.executable, "-c", _VICTIM, str(root), str(flag)], cwd=ROOT,
                            env=env)
  deadline = time.time() + 240
  while not flag.exists() and victim.poll() is None and time.time() < deadline:
    time.sleep(0.1)
  assert flag.exists()
  victim.kill()  # SIGKILL: no cleanup runs.
  victim.wait()
  names = os.listdir(root / "step")
  assert any(".tmp-" in n for n in names) and any(n.endswith(".lock") for n in names)
  calls = []
  art = _run(root, 1, calls)
  assert len(calls) == 1 and os.listdir(root / "step") == [os.path.basename(art.uri)]


# ---------------------------------------------------------------------------------------------
# Commit on an object store (no atomic rename), through a gfile double that stores objects in a
# local directory, renames object by object and dies, as a killed process would (no cleanup),
# after any object write. (TF's ram:// cannot serve: its exists/listdir/walk match bare name
# prefixes, so `<uri>.lock` makes `<uri>` "exist" and walk(uri) lists the temporaries.)

class _Killed(BaseException):
  pass


class _ObjectStore:
  """`obj://` paths as objects under a local directory, `tf.io.gfile`'s interface. Writes of
  objects (GFile for writing, copy, and each object of rename, remove, rmtree) stop after
  `budget` of them: that write and every later one raise _Killed."""

  def __init__(self, local_root, budget=10**9):
    self.root, self.budget, self.writes = str(local_root), budget, []

  def _p(self, path):
    assert path.startswith("obj://"), path
    return os.path.join(self.root, path[len("obj://"):])

  def _back(self, local):
    return "obj://" + os.path.relpath(local, self.root)

  def _write(self, what, path):
    if len(self.writes) >= self.budget:
      raise _Killed(what)
    self.writes.append((what, path))

  def GFile(self, path, mode="r"):  # pylint: disable=invalid-name
    if "w" in mode or "a" in mode:
      self._write("write", path)
    return tf.io.gfile.GFile(self._p(path), mode)

  def exists(self, path):
    return os.path.exists(self._p(path))

  def isdir(self, path):
    return os.path.isdir(self._p(path))

  def makedirs(self, path):
    os.makedirs(self._p(path), exist_ok=True)  # Object stores have no directories to write.

  def listdir(self, path):
    return os.listdir(self._p(path))

  def stat(self, path):
    return tf.io.gfile.stat(self._p(path))

  def walk(self, top):
    for d, dirs, files in os.walk(self._p(top)):
      yield self._back(d), dirs, files

  def copy(self, src, dst, overwrite=False):
    self._write("copy", dst)
    tf.io.gfile.copy(self._p(src), self._p(dst), overwrite=overwrite)

  def remove(self, path):
    self._write("remove", path)
    os.remove(self._p(path))

  def _objects(self, path):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(self._p(path)) for f in fs)

  def rmtree(self, path):
    for local in self._objects(path):
      self._write("remove", self._back(local))
      os.remove(local)
    shutil.rmtree(self._p(path))

  def rename(self, src, dst, overwrite=False):
    del overwrite
    for local in self._objects(src):
      target = os.path.join(self._p(dst), os.path.relpath(local, self._p(src)))
      self._write("copy", self._back(target))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.copyfile(local, target)
    self.rmtree(src)


def _obj_build(calls):
  def build(tmp):
    calls.append(tmp)
    for i in range(3):
      io.save_npz(io.join(tmp, f"part{i}.npz"), {"distance": np.full(4, float(i))})
    io.gfile.makedirs(io.join(tmp, "sub"))
    io.write_json(io.join(tmp, "sub", "index.json"), {"parts": 3})
    return {"parts": 3}
  return build


def _obj_run(root, calls, force=False):
  return artifacts.run("step", "1", "Thing", {"v": 1}, {}, root, _obj_build(calls), force=force)


def _as_if_dead(store, root, pid):
  """The lock of the 'killed' run names this (live) process: rewrite it as dead `pid`'s."""
  step = io.join(root, "step")
  for name in store.listdir(step) if store.exists(step) else []:
    if name.endswith(".lock"):
      with store.GFile(io.join(step, name), "w") as f:
        f.write(json.dumps({"pid": pid, "host": artifacts._HOST}))  # pylint: disable=protected-access


@pytest.fixture
def fast_remote_lock(monkeypatch):
  monkeypatch.setattr(artifacts, "REMOTE_LOCK_SETTLE_S", 0.0)  # One process: no racing writer.


def _artifacts_in(step):
  """(name, verdict) of every directory a reader might take for an artifact."""
  out = []
  for name in io.gfile.listdir(step):
    if ".tmp-" in name or name.endswith(".lock"):
      continue
    try:
      art = artifacts.load(io.join(step, name))
      assert io.load_npz(artifacts.payload_path(art, "part2.npz"))["distance"][0] == 2.0
      out.append((name, "complete"))
    except UserError as e:
      assert "not a finished artifact" in str(e), e  # Absent, never half-read.
      out.append((name, "absent"))
  return out


def test_object_store_commit_interrupted_after_any_object(tmp_path, monkeypatch,
                                                         fast_remote_lock):
  del fast_remote_lock
  dead = _dead_pid()
  whole = _ObjectStore(tmp_path)
  monkeypatch.setattr(io, "gfile", whole)
  ref = _obj_run("obj://whole", [])
  copies = [w for w in whole.writes if w[0] == "copy" and w[1].startswith(ref.uri + "/")]
  marker_at = whole.writes.index(("write", io.join(ref.uri, "metadata.json")))
  assert len(copies) == 4 and marker_at > max(whole.writes.index(c) for c in copies)
  n = len(whole.writes)
  accepted = []
  for budget in range(n):
    root = f"obj://cut{budget}"
    monkeypatch.setattr(io, "gfile", _ObjectStore(tmp_path, budget))
    with pytest.raises(_Killed):
      _obj_run(root, [])
    monkeypatch.setattr(io, "gfile", whole)  # A reader, then the next run, on the same store.
    step = io.join(root, "step")
    verdicts = _artifacts_in(step) if io.exists(step) else []
    if ("256a0fac4dfc123d", "complete") in verdicts:
      accepted.append(budget)
    _as_if_dead(whole, root, dead)
    again = []
    art = _obj_run(root, again)  # Reuses a complete artifact or builds it once.
    assert len(again) == (0 if budget in accepted else 1)
    assert artifacts.load(art.uri).summary == {"parts": 3}
    assert io.gfile.listdir(step) == [os.path.basename(art.uri)]  # Temporaries, lock removed.
  assert os.path.basename(ref.uri) == "256a0fac4dfc123d"
  assert accepted == list(range(marker_at + 1, n))  # Only once the marker is in.


def test_object_store_force_keeps_a_complete_artifact_at_every_cut(tmp_path, monkeypatch,
                                                                   fast_remote_lock):
  del fast_remote_lock
  whole = _ObjectStore(tmp_path)
  monkeypatch.setattr(io, "gfile", whole)
  _obj_run("obj://force", [])
  start = len(whole.writes)
  _obj_run("obj://force", [], force=True)
  n = len(whole.writes) - start
  verdicts = _artifacts_in("obj://force/step")
  assert sorted(v for _, v in verdicts) == ["complete", "complete"]  # New one, and the one kept.
  for budget in range(n):
    root = f"obj://forcecut{budget}"
    monkeypatch.setattr(io, "gfile", whole)
    _obj_run(root, [])
    monkeypatch.setattr(io, "gfile", _ObjectStore(tmp_path, budget))
    with pytest.raises(_Killed):
      _obj_run(root, [], force=True)
    monkeypatch.setattr(io, "gfile", whole)
    assert "complete" in [v for _, v in _artifacts_in(io.join(root, "step"))], budget


# ---------------------------------------------------------------------------------------------
# Training: exact resume, corrupt checkpoints, non-finite values.

@pytest.fixture(scope="module")
def digits():
  import tfhull.data  # pylint: disable=import-outside-toplevel
  tf.config.experimental.enable_op_determinism()
  return tfhull.data.prepare("digits", train_size=400, test_size=100, seed=0)


# Momentum, a cosine schedule, weight decay, augmentation and batch norm: every kind of state.
_SPEC = "cnn:width=4,depth=2"
_CFG = dict(optimizer="sgd", learning_rate=0.05, schedule="cosine", weight_decay=1e-3,
            augment="flip_crop", epochs=4, batch_size=64, seed=7)


def _interrupt(where, epoch, batch=3):
  import keras  # pylint: disable=import-outside-toplevel

  def stop(e, b=None):
    if e == epoch and (b is None or b == batch):
      raise KeyboardInterrupt
  state = {"epoch": 0}

  def on_batch(b, logs):
    del logs
    stop(state["epoch"], b)

  if where == "mid_epoch":
    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: state.update(epoch=e), on_train_batch_end=on_batch)
  if where == "epoch_end":
    return keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: stop(e))
  return keras.callbacks.LambdaCallback(on_train_end=lambda logs: stop(epoch))  # After fit.


def _state(result):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  return [v.numpy() for v in training._training_variables(result.model)]  # pylint: disable=protected-access


@pytest.fixture(scope="module")
def reference(digits):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  return training.train(_SPEC, digits, training.TrainConfig(**_CFG), verbose=0)


@pytest.mark.parametrize("interruptions", [
    [("mid_epoch", 2)],
    [("epoch_end", 0), ("mid_epoch", 1), ("epoch_end", 3)],  # Killed again while resuming.
    [("after_fit", 3)],
])
def test_killed_training_resumes_to_identical_weights(digits, reference, tmp_path, interruptions):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  work, cfg = str(tmp_path / "work"), training.TrainConfig(**_CFG)
  for where, epoch in interruptions:
    with pytest.raises(KeyboardInterrupt):
      training.train(_SPEC, digits, cfg, work_dir=work, callbacks=[_interrupt(where, epoch)],
                     verbose=0)
  resumed = training.train(_SPEC, digits, cfg, work_dir=work, verbose=0)
  assert resumed.metrics["resumed_from_epoch"] > 0
  for a, b in zip(_state(resumed), _state(reference), strict=True):
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()  # Bit for bit.
  assert resumed.history == reference.history
  assert resumed.metrics["test_accuracy"] == reference.metrics["test_accuracy"]


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_a_stopped_run_killed_before_commit_does_not_train_on(digits, tmp_path):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  cfg = training.TrainConfig(epochs=200, batch_size=64, until_interpolation=True, seed=1)
  spec, work = "mlp:width=64,depth=1", str(tmp_path / "work")
  ref = training.train(spec, digits, cfg, verbose=0)
  assert ref.metrics["interpolation_epoch"] < 200
  with pytest.raises(KeyboardInterrupt):
    training.train(spec, digits, cfg, work_dir=work, callbacks=[_interrupt("after_fit", 0)],
                   verbose=0)
  resumed = training.train(spec, digits, cfg, work_dir=work, verbose=0)
  assert resumed.metrics["interpolation_epoch"] == ref.metrics["interpolation_epoch"]
  assert resumed.metrics["epochs_run"] == ref.metrics["epochs_run"]
  for a, b in zip(_state(resumed), _state(ref), strict=True):
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_config"])
def test_corrupt_checkpoint_is_discarded_with_a_warning(digits, reference, tmp_path, caplog,
                                                        damage):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  work, cfg = str(tmp_path / "work"), training.TrainConfig(**_CFG)
  first = cfg if damage != "other_config" else training.TrainConfig(**dict(_CFG, seed=8))
  with pytest.raises(KeyboardInterrupt):
    training.train(_SPEC, digits, first, work_dir=work, callbacks=[_interrupt("epoch_end", 2)],
                   verbose=0)
  path = os.path.join(work, training.CHECKPOINT)
  data = open(path, "rb").read()
  if damage == "truncate":
    open(path, "wb").write(data[:len(data) // 2])
  elif damage == "garbage":
    open(path, "wb").write(b"\0" * len(data))
  caplog.clear()
  resumed = training.train(_SPEC, digits, cfg, work_dir=work, verbose=0)
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert any("discarding the checkpoint" in w for w in warnings), warnings
  assert resumed.metrics["resumed_from_epoch"] == 0  # Restarted cleanly ...
  for a, b in zip(_state(resumed), _state(reference), strict=True):
    assert a.tobytes() == b.tobytes()  # ... to the uninterrupted run's weights.


def _train_step(digits, cfg):
  from tfhull import training  # pylint: disable=import-outside-toplevel

  def build(tmp, work):
    res = training.train("mlp:width=16,depth=1", digits, cfg, work_dir=work, verbose=0)
    io.write_json(io.join(tmp, "weights.json"),
                  [v.numpy().tolist() for v in res.model.weights])
    return res.metrics
  return build


@pytest.mark.parametrize("kwargs,match,built", [
    (dict(weight_decay=float("nan")), "weight_decay=nan", False),
    (dict(weight_decay=float("inf")), "weight_decay=inf", False),
    (dict(optimizer="sgd", learning_rate=1e30), "training diverged at epoch 1", True),
    (dict(init_scale=1e30), "training diverged at epoch 1", True),
])
def test_non_finite_training_commits_nothing(digits, tmp_path, kwargs, match, built):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  cfg = training.TrainConfig(**{"epochs": 3, "batch_size": 64, **kwargs})
  with pytest.raises(UserError, match=match) as e:
    artifacts.run("train", "1", "Model", {"cfg": repr(cfg)}, {}, str(tmp_path), _train_step(digits, cfg),
                  resumable=True)
  assert "\n" not in str(e.value)
  assert not (tmp_path / "train").exists()  # No artifact, no temporary, no work directory.


def test_training_refuses_a_symlinked_work_dir(digits, tmp_path):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  target = tmp_path / "target"
  target.mkdir()
  (target / "keep").write_text("x")
  os.symlink(target, tmp_path / "work")
  with pytest.raises(UserError, match="symbolic link"):
    training.train("linear", digits, training.TrainConfig(epochs=1, batch_size=64),
                   work_dir=str(tmp_path / "work"), verbose=0)
  assert os.listdir(target) == ["keep"]


@pytest.mark.parametrize("damage", ["link_to_dev_zero", "directory"])
def test_a_checkpoint_that_is_not_a_file_is_discarded_not_followed(digits, tmp_path, caplog,
                                                                   damage):
  from tfhull import training  # pylint: disable=import-outside-toplevel
  work = tmp_path / "work"
  work.mkdir()
  if damage == "link_to_dev_zero":
    os.symlink("/dev/zero", work / training.CHECKPOINT)
    os.symlink("/dev/null", work / (training.CHECKPOINT + ".partial"))
  else:
    (work / training.CHECKPOINT).mkdir()
  res = training.train("linear", digits, training.TrainConfig(epochs=2, batch_size=64),
                       work_dir=str(work), verbose=0)
  assert res.metrics["resumed_from_epoch"] == 0 and res.metrics["epochs_run"] == 2
  assert any("discarding the checkpoint" in r.getMessage() for r in caplog.records)
  assert os.path.isfile(work / training.CHECKPOINT)  # A fresh, real checkpoint.
  assert not os.path.islink(work / training.CHECKPOINT)


@pytest.mark.slow
def test_resume_is_exact_under_a_two_replica_mirrored_strategy():
  code = textwrap.dedent("""
      import tempfile
      from tfhull import distribute
      distribute.split_cpu(2)
      import keras, tensorflow as tf
      tf.config.experimental.enable_op_determinism()
      import tfhull.data
      from tfhull import training
      strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
      ds = tfhull.data.prepare("digits", train_size=400, test_size=100, seed=0)
      cfg = training.TrainConfig(optimizer="sgd", learning_rate=0.05, schedule="cosine",
                                 epochs=4, batch_size=32, augment="crop", seed=3)
      spec = "cnn:width=4,depth=2"
      ref = training.train(spec, ds, cfg, strategy=strategy, verbose=0)
      def stop(batch, logs):
        if stop.epoch == 2 and batch == 2:
          raise KeyboardInterrupt
      stop.epoch = 0
      cb = keras.callbacks.LambdaCallback(
          on_epoch_begin=lambda e, logs: setattr(stop, "epoch", e), on_train_batch_end=stop)
      work = tempfile.mkdtemp()
      try:
        training.train(spec, ds, cfg, strategy=strategy, work_dir=work, callbacks=[cb], verbose=0)
      except KeyboardInterrupt:
        pass
      res = training.train(spec, ds, cfg, strategy=strategy, work_dir=work, verbose=0)
      same = all(a.numpy().tobytes() == b.numpy().tobytes() for a, b in zip(
          training._training_variables(res.model), training._training_variables(ref.model)))
      print("RESULT", res.metrics["resumed_from_epoch"], res.metrics["replicas"], same)
  """)
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().splitlines()[-1] == "RESULT 2 2 True"


_TRAINER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import keras, tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    import tfhull.data
    from tfhull import artifacts, io, training
    from tests import test_reliability as t
    root, slow = sys.argv[1], float(sys.argv[2])
    ds = tfhull.data.prepare("digits", train_size=400, test_size=100, seed=0)
    pause = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: time.sleep(slow))
    art = t.run_train_step(root, ds, [pause])
    print("DONE", art.uri)
""")


def run_train_step(root, ds, callbacks=()):
  """The train step in miniature: `artifacts.run` (resumable) around `training.train`."""
  from tfhull import training  # pylint: disable=import-outside-toplevel
  cfg = training.TrainConfig(**_CFG)

  def build(tmp, work):
    res = training.train(_SPEC, ds, cfg, work_dir=work, callbacks=list(callbacks), verbose=0)
    io.save_npz(io.join(tmp, "weights.npz"),
                {f"w{i}": v.numpy() for i, v in enumerate(res.model.weights)})
    return {"resumed_from_epoch": res.metrics["resumed_from_epoch"]}
  return artifacts.run("train", "1", "Model", {"spec": _SPEC, **_CFG}, {}, root, build,
                       resumable=True)


@pytest.mark.slow
def test_sigkilled_train_step_resumes_to_the_uninterrupted_weights(digits, reference, tmp_path):
  root = str(tmp_path / "root")
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  child = subprocess.Popen([sys.executable, "-c", _TRAINER, root, "2"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  ckpt, deadline = None, time.time() + 300
  while ckpt is None and child.poll() is None and time.time() < deadline:
    found = [d for d in (os.listdir(os.path.join(root, "train"))
                         if os.path.isdir(os.path.join(root, "train")) else [])
             if d.endswith(".work") and os.path.exists(os.path.join(root, "train", d,
                                                                    "checkpoint.npz"))]
    ckpt = found[0] if found else None
    time.sleep(0.05)
  assert ckpt, child.communicate()[1][-3000:]
  time.sleep(1.0)  # Somewhere in the next epoch.
  child.kill()  # SIGKILL: no handler runs, the lock and the temporary stay behind.
  child.wait()
  left = os.listdir(os.path.join(root, "train"))
  assert any(n.endswith(".lock") for n in left) and any(".tmp-" in n for n in left), left
  art = run_train_step(root, digits)  # Same fingerprint: takes the stale lock, resumes.
  assert art.summary["resumed_from_epoch"] >= 1
  weights = io.load_npz(artifacts.payload_path(art, "weights.npz"))
  for i, v in enumerate(reference.model.weights):
    assert weights[f"w{i}"].tobytes() == v.numpy().tobytes()
  assert os.listdir(os.path.join(root, "train")) == [os.path.basename(art.uri)]


@pytest.mark.parametrize("args,message", [
    (["--model=cnn", "--dataset=toy2d:moons"], "needs images (H, W, C)"),
    (["--representations=haar:9"], "9 Haar levels need images of at least 512 pixels"),
    (["--representations=haar:1:top1000"], "8x8x1 images have 64"),
    (["--attack_eps_l2=100"], "sqrt of the input dimension 64"),
    (["--cw_learning_rate=-1"], "--cw_learning_rate=-1.0 must be a positive number"),
    (["--attack_flip_tol=nan"], "--attack_flip_tol=nan"),
    (["--hull_abs_tol=nan"], "--hull_abs_tol=nan is not a finite number"),
    (["--hull_rel_tol=nan"], "--hull_rel_tol=nan is not a finite number"),
    (["--weight_decay=nan"], "--weight_decay=nan"),
    (["--force=typo"], "unknown step 'typo'"),
    (["--train_size=100"], "--batch_size=128 exceeds --train_size=100"),
    (["--data_dir=/data"], "--data_dir applies to tfds: sources only"),
    (["--dataset=npz:{tmp}/empty.npz"], "examples with no features"),
    (["--representations=pixel,layer:nope"], "--model=mlp:width=256,depth=2 has no layer 'nope'"),
    (["--model=resnet:depth=8", "--representations=layer:dense"], "has no layer 'dense'"),
    (["--flagfile={tmp}/loop.flags"], "includes itself (loop.flags -> inner.flags -> loop.flags)"),
    (["--model=mlp:width=1000000"], "more than this machine's"),
    (["--label_noise=nan"], "label_noise"),
    (["--ray_t_max=nan"], "--ray_t_max=nan is not a finite number"),
    (["--output_root=ram://runs"], "--output_root=ram://runs: unsupported location"),
    (["--model_artifact=foo://m"], "--model_artifact=foo://m: unsupported location"),
])
def test_flags_fail_before_any_work(tmp_path, args, message):
  """Each bad flag is one line, within seconds, before any artifact (or TensorFlow) exists."""
  np.savez(tmp_path / "empty.npz", x_train=np.zeros((4, 0), np.float32), y_train=np.arange(4) % 2,
           x_test=np.zeros((2, 0), np.float32), y_test=np.arange(2) % 2)
  (tmp_path / "loop.flags").write_text(f"--seed=1\n--flagfile={tmp_path / 'inner.flags'}\n")
  (tmp_path / "inner.flags").write_text(f"# comment\n--flagfile={tmp_path / 'loop.flags'}\n")
  args = [a.format(tmp=tmp_path) for a in args]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  start = time.time()
  out = subprocess.run([sys.executable, "-m", "pipelines.full", f"--output_root={tmp_path / 'r'}",
                        *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith("tfhull: error")]
  assert len(errors) == 1 and len(errors[0]) <= 320
  assert not (tmp_path / "r").exists()
  assert time.time() - start < 30  # Under 3 s on an idle 2-core machine: no TensorFlow import.
  assert "tensorflow" not in out.stderr.lower() and "cuda" not in out.stderr.lower()


def test_memory_estimates_refuse_absurd_settings():
  """Settings whose dominant array alone exceeds the memory fail up front with the number."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  from tfhull.study import config  # pylint: disable=import-outside-toplevel
  gib = 2**30
  base = study.StudyConfig()
  config.check_memory(base, (8, 8, 1), ["train", "features", "hull"], memory=gib)  # Fits.
  wide = dataclasses.replace(base, train=dataclasses.replace(base.train, model="mlp:width=8192"))
  with pytest.raises(UserError, match=r"~67,731,466 parameters.* needs 1\.0 GiB .*1\.0 GiB"):
    config.check_memory(wide, (8, 8, 1), ["train"], memory=gib)
  big = dataclasses.replace(base, features=study.FeaturesConfig(representations=("pixel",)),
                            data=study.DataConfig(train_size=20000, test_size=1000))
  with pytest.raises(UserError, match=r"representation pixel \(21,000 examples x 3,072 float32"):
    config.check_memory(big, (32, 32, 3), ["features"], memory=gib // 8)
  with pytest.raises(UserError, match=r"hull solve in pixel \(20,000 x 3,072 training matrix"):
    config.check_memory(big, (32, 32, 3), ["hull"], memory=gib // 2)


TINY_STUDY = ["--train_size=100", "--test_size=20", "--epochs=3", "--nountil_interpolation",
              "--batch_size=32",
              "--representations=pixel,layer:features", "--attacks=fgm", "--attack_norms=2",
              "--attack_bisection_steps=3", "--noattack_flip_points", "--nohull_per_class",
              "--hull_query_splits=test,adv_min_pgd_2", "--hull_working_set=32",
              "--ray_points=5"]


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_two_concurrent_studies_share_one_build_per_artifact(tmp_path):
  """Two `pipelines.full` runs started together into one root both finish; every artifact is
  built once (the second run waits on each artifact's lock and reuses it)."""
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  args = [sys.executable, "-m", "pipelines.full", f"--output_root={tmp_path}", *TINY_STUDY]
  procs = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  built = [line.split("building ")[1].strip() for _, err in outs for line in err.splitlines()
           if ": building " in line]
  assert len(built) == len(set(built))  # No artifact built twice.
  listed = [line.split()[-1] for line in outs[0][0].splitlines()
            if line.startswith("  ") and str(tmp_path) in line]
  assert sorted(built) == sorted(listed)  # Each of the run's artifacts built by one of the two.
  for step in os.listdir(tmp_path):
    leftovers = [d for d in os.listdir(tmp_path / step) if "." in d]
    assert not leftovers, leftovers  # No temporaries, locks or replaced copies.


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_study_killed_in_training_resumes_to_the_same_numbers(tmp_path):
  """A study SIGKILLed mid-training and run again gives the same payloads and metrics as an
  uninterrupted run of the same flags."""
  from tfhull import training  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  flags_ = [*TINY_STUDY, "--epochs=8"]

  def run(root):
    out = subprocess.run([sys.executable, "-m", "pipelines.full", f"--output_root={root}",
                          *flags_], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()
            if line.startswith("  ") and len(line.split()) == 2 and str(root) in line}

  whole = run(tmp_path / "a")
  proc = subprocess.Popen([sys.executable, "-m", "pipelines.full",
                           f"--output_root={tmp_path / 'b'}", *flags_], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  checkpoint = None
  while time.time() < deadline and proc.poll() is None and checkpoint is None:
    for work in (tmp_path / "b" / "train").glob("*.work") if (tmp_path / "b" / "train").exists() \
        else ():
      if (work / training.CHECKPOINT).exists():
        checkpoint = work / training.CHECKPOINT
    time.sleep(0.05)
  proc.kill()  # SIGKILL mid-training, after at least one epoch's checkpoint.
  proc.wait()
  assert checkpoint is not None, "training never wrote a checkpoint"
  assert not list((tmp_path / "b" / "train").glob("*/metadata.json"))
  resumed = run(tmp_path / "b")
  assert list(resumed) == list(whole)
  for key, uri in whole.items():
    a, b = artifacts.load(uri), artifacts.load(resumed[key])
    assert a.fingerprint == b.fingerprint, key
    for name, digest in a.metadata["files"].items():
      if name.endswith((".npz", ".json")) and "tensorboard" not in name and name != "history.json":
        assert b.metadata["files"][name] == digest, (key, name)
  assert (io.read_json(os.path.join(whole["report"], "metrics.json"))
          == io.read_json(os.path.join(resumed["report"], "metrics.json")))
