"""TFX-style artifacts without TFX: fingerprinted, cached, verified, committed directories.

An artifact is a directory `<output_root>/<component>/<fingerprint[:16]>/` holding a payload and a
`metadata.json`. The fingerprint is sha256 over the component name, its code version, the
canonical JSON of its params and the fingerprints of its input artifacts, so the same inputs and
params always map to the same directory (a cache hit recomputes nothing).

Trust nothing on disk: every use (`load`, and each cache hit of `run`) checks the metadata (its
own checksum, field types, the fingerprint recomputed from its params and inputs and equal to the
directory name) and the sha256 of every payload file, whose names must stay inside the artifact
(relative, regular files, no links). Readers resolve names found in index files with
`payload_path`. A failed check is a one-line UserError naming the artifact and `--force`.

Commit protocol: the payload is written into a sibling `<uri>.tmp-<pid>@<host>-<id>` directory.
Locally it is then renamed into place with `metadata.json` (the commit marker, holding per-file
checksums and `status: complete`) already inside. On object stores (gs://, ram://), where renames
are copies, payload objects are copied first, each is re-read and checked against its checksum,
and `metadata.json` is written last; a directory without a valid marker is absent to readers.

Multi-worker clusters (TF_CONFIG): the chief alone takes the lock and commits; every other worker
runs the same build (its collectives pair with the chief's) into a private local temporary
directory that is deleted afterwards, then waits for the chief's commit and returns the chief's
verified artifact. Non-chief workers write nothing under the output root.

Concurrency: one run at a time builds an artifact, under `<uri>.lock` (owner pid, host, start
time; a lock of a dead process on this host is stale and taken over). A second run waits and then
reuses the first's artifact. `--force` recomputes; the artifact it replaces is moved aside
(`<uri>.replaced-<time>`), never deleted. See docs/guarantees.md.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import stat
import tempfile
import time
import uuid
from typing import Any, Callable, Mapping, Optional, Union

from absl import logging

import tfhull
from tfhull import cluster
from tfhull import environment
from tfhull import io
from tfhull.errors import UserError

METADATA = "metadata.json"
_FORMAT = 2
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
# <uri>.tmp-<pid>[@<host>]-<8 hex>; the host is missing in temporaries of older versions.
_TMP = re.compile(r"^(?P<base>.+)\.tmp-(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9_.-]+))?-[0-9a-f]{8}$")


@dataclasses.dataclass(frozen=True)
class Artifact:
  """A finished artifact: its directory and its parsed, verified metadata."""
  uri: str
  metadata: Mapping[str, Any]

  @property
  def type(self) -> str:
    return self.metadata["type"]

  @property
  def fingerprint(self) -> str:
    return self.metadata["fingerprint"]

  @property
  def params(self) -> Mapping[str, Any]:
    return self.metadata["params"]

  @property
  def summary(self) -> Mapping[str, Any]:
    return self.metadata.get("summary", {})

  def path(self, name: str) -> str:
    """`uri/name`; `name` must be a relative path inside the artifact (see `payload_path` for
    names read from the payload itself)."""
    return io.join(self.uri, io.check_name(name, self.uri))


def canonical_json(obj: Any) -> str:
  return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=io._json_default)


def fingerprint(component: str, version: str, params: Mapping[str, Any],
                inputs: Mapping[str, Artifact]) -> str:
  h = hashlib.sha256()
  h.update(canonical_json({
      "format": _FORMAT,
      "component": component,
      "version": version,
      "params": params,
      "inputs": {k: v.fingerprint for k, v in sorted(inputs.items())},
  }).encode())
  return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Checksums.

# Local file digests, by (path, device, inode, size, mtime, ctime): each file is hashed once per
# process; any write (or `touch`, which changes ctime) re-hashes it.
_DIGESTS: dict = {}


def _sha256_file(path: str) -> str:
  key = None
  if io.is_local(path):
    st = os.stat(io.local_path(path))
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _DIGESTS:
      return _DIGESTS[key]
  h = hashlib.sha256()
  with io.gfile.GFile(path, "rb") as f:
    while chunk := f.read(1 << 22):
      h.update(chunk)
  if key is not None:
    _DIGESTS[key] = h.hexdigest()
  return h.hexdigest()


def _metadata_checksum(meta: Mapping[str, Any]) -> str:
  """sha256 of the canonical JSON of the metadata without its `checksum` field (as read back)."""
  body = {k: v for k, v in json.loads(canonical_json(meta)).items() if k != "checksum"}
  return hashlib.sha256(canonical_json(body).encode()).hexdigest()


# Top-level payload directories of diagnostics whose bytes depend on the wall clock (TensorBoard
# event files carry timestamps in their names and records). They are committed with the artifact
# (atomically, like the rest) and listed in the metadata's `logs`, but never checksummed, so
# `files` lists exactly the payload a rebuild reproduces; readers never read them.
LOG_DIRS = ("tensorboard",)


def _is_log(rel: str) -> bool:
  return rel.replace(os.sep, "/").split("/", 1)[0] in LOG_DIRS


def _payload_files(root: str) -> list[str]:
  """Relative names of the files under `root` (a build's output), refusing links and devices."""
  out = []
  for dirpath, dirs, files in io.gfile.walk(root):
    for name in list(files) + list(dirs):
      path = io.join(dirpath, name)
      rel = os.path.relpath(path, root)
      if io.is_local(path):
        mode = os.lstat(io.local_path(path)).st_mode
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
          raise UserError(f"the build wrote {rel!r}, a link or special file; artifacts hold "
                          "regular files only, write a copy instead")
      if name in files and rel != METADATA:
        out.append(rel)
  return sorted(out)


# ---------------------------------------------------------------------------------------------
# Loading and verification.

def _corrupt(uri: str, what: str) -> UserError:
  return UserError(f"artifact {uri}: {what}; rerun the step that writes it with --force")


def _check_metadata(uri: str, meta: Any) -> None:
  """Structure of a metadata dict: one-line UserError on a wrong type or a missing field."""
  if not isinstance(meta, dict):
    raise _corrupt(uri, f"{METADATA} holds a {type(meta).__name__}, not an object")
  if meta.get("status") != "complete":
    raise UserError(f"{uri} is an incomplete artifact; delete it or rerun with --force")
  fields = {"type": str, "component": str, "version": str, "params": dict, "inputs": dict,
            "fingerprint": str, "files": dict, "summary": dict, "checksum": str}
  for name, kind in fields.items():
    if name not in meta:
      raise _corrupt(uri, f"{METADATA} lacks field {name!r} (stale or corrupt)")
    if not isinstance(meta[name], kind):
      raise _corrupt(uri, f"{METADATA} field {name!r} is a {type(meta[name]).__name__}, "
                          f"expected {'an object' if kind is dict else 'a string'}")
  for name, ref in meta["inputs"].items():
    if not (isinstance(ref, dict) and isinstance(ref.get("fingerprint"), str)
            and _HEX64.fullmatch(ref["fingerprint"])):
      raise _corrupt(uri, f"{METADATA} input {name!r} has no valid fingerprint")
  if not isinstance(meta.get("logs", []), list):
    raise _corrupt(uri, f"{METADATA} field 'logs' is not a list")
  for name in meta.get("logs", []):
    io.check_name(name, f"artifact {uri}")
  for name, digest in meta["files"].items():
    io.check_name(name, f"artifact {uri}")
    if name == METADATA or not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
      raise _corrupt(uri, f"{METADATA} entry for {name!r} is not a sha256 checksum")


def load(uri: str, expected_type: Optional[str] = None, verify: bool = True, *,
         expected_fingerprint: Optional[str] = None) -> Artifact:
  """Loads and verifies a finished artifact; raises UserError if it is missing, partial or corrupt.

  Checks: `metadata.json` is a regular file, parses, has the fields and types of a complete
  artifact and matches its own checksum (an edited summary is caught); the type matches; the
  fingerprint recomputes from the recorded params and inputs, equals `expected_fingerprint` if
  given and matches the directory name when that is a fingerprint prefix; and (with `verify`)
  every payload file is a regular file inside the artifact matching its recorded sha256 (hashed
  once per process while unchanged).
  """
  uri = uri.rstrip("/")
  meta_path = io.join(uri, METADATA)
  if not io.exists(meta_path):
    raise UserError(f"{uri} is not a finished artifact (no {METADATA}); rerun the step that writes it")
  if io.is_local(meta_path):
    mode = os.lstat(io.local_path(meta_path)).st_mode
    if not stat.S_ISREG(mode):
      raise _corrupt(uri, f"{METADATA} is a link or special file")
  meta = io.read_json(meta_path)
  _check_metadata(uri, meta)
  if expected_type and meta["type"] != expected_type:
    raise UserError(f"{uri} is a {meta['type']} artifact, expected {expected_type}; "
                    "pass the directory of the right step")
  inputs = {k: _InputRef(v["fingerprint"]) for k, v in meta["inputs"].items()}
  fp = fingerprint(meta["component"], meta["version"], meta["params"], inputs)
  if fp != meta["fingerprint"]:
    raise _corrupt(uri, f"{METADATA} fingerprint does not match its params and inputs (edited)")
  if _metadata_checksum(meta) != meta["checksum"]:
    raise _corrupt(uri, f"{METADATA} was edited (it does not match its checksum)")
  base = os.path.basename(uri)
  if (expected_fingerprint and fp != expected_fingerprint) or (
      _HEX16.fullmatch(base) and base != fp[:16]):
    raise _corrupt(uri, f"it holds the artifact of other params or inputs (fingerprint "
                        f"{fp[:16]}), not the one its directory names")
  if verify:
    for name, digest in meta["files"].items():
      path = io.confined_path(uri, name, f"artifact {uri}")
      if not io.exists(path):
        raise _corrupt(uri, f"payload file {name} is missing")
      if _sha256_file(path) != digest:
        raise _corrupt(uri, f"payload file {name} does not match its checksum (edited or corrupt)")
  return Artifact(uri=uri, metadata=meta)


def payload_path(artifact: Union[Artifact, str], name: Any) -> str:
  """The path of payload file `name` (e.g. an index file's "file" entry) of a verified artifact.

  `name` must be one of the files the metadata lists (hence checksummed at load), a relative path
  inside the artifact, and (locally) a regular file reached without links. A directory string is
  loaded (and verified) first. Raises UserError otherwise.
  """
  art = artifact if isinstance(artifact, Artifact) else load(artifact)
  where = f"artifact {art.uri}"
  path = io.confined_path(art.uri, name, where)
  if name not in art.metadata.get("files", {}):
    raise _corrupt(art.uri, f"{name!r} is not one of its recorded payload files")
  return path


@dataclasses.dataclass(frozen=True)
class _InputRef:
  fingerprint: str


# ---------------------------------------------------------------------------------------------
# Locks and stale temporaries.

# Object stores: seconds between writing a lock object and reading it back to see who won.
REMOTE_LOCK_SETTLE_S = 0.5
_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


def _process_start(pid: int) -> Optional[str]:
  """Start time of `pid` in clock ticks since boot (Linux), to tell a reused pid apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _pid_alive(pid: int, start: Optional[str] = None) -> bool:
  """Whether `pid` runs on this host (a zombie or a pid reused since `start` counts as dead)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  try:
    with open(f"/proc/{pid}/stat") as f:
      if f.read().rsplit(")", 1)[1].split()[0] == "Z":
        return False
  except (OSError, IndexError):
    pass
  return not (start and _process_start(pid) not in (None, start))


class _Lock:
  """`<uri>.lock`: exclusive create (O_EXCL locally; write-then-read-back on object stores, a
  best effort), holding {pid, host, start, id}. Waits while a live process holds it; a lock of a
  dead process on this host is stale and removed; `timeout` seconds of waiting raise UserError."""

  def __init__(self, path: str, what: str, timeout: Optional[float] = None):
    self.path, self.what, self.timeout = path, what, timeout
    self.owner = {"pid": os.getpid(), "host": _HOST, "start": _process_start(os.getpid()),
                  "id": uuid.uuid4().hex,
                  "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}

  def _try_create(self) -> bool:
    data = json.dumps(self.owner).encode()
    if io.is_local(self.path):
      flags_ = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
      try:
        try:
          fd = os.open(io.local_path(self.path), flags_, 0o644)
        except FileNotFoundError:  # A failed concurrent first build removed the step directory.
          os.makedirs(os.path.dirname(io.local_path(self.path)), exist_ok=True)
          fd = os.open(io.local_path(self.path), flags_, 0o644)
      except FileExistsError:
        return False
      except OSError as e:
        raise UserError(f"cannot create the lock {self.path} ({e.strerror}); pass a writable "
                        "--output_root") from e
      with os.fdopen(fd, "wb") as f:
        f.write(data)
      return True
    if io.exists(self.path):
      return False
    io.write_bytes(self.path, data)
    time.sleep(REMOTE_LOCK_SETTLE_S)  # Let a racing writer's object land; see whose survived.
    return self._read() == self.owner

  def _read(self) -> Optional[dict]:
    try:
      owner = json.loads(io.read_bytes(self.path).decode())
      return owner if isinstance(owner, dict) else {}
    except Exception:  # Gone (None) or half-written/garbage ({}).  pylint: disable=broad-except
      return None if not io.exists(self.path) else {}

  def _stale(self, owner: dict) -> bool:
    if owner == {}:  # Unreadable: a process killed between create and write, if old enough.
      try:
        return time.time() - io.gfile.stat(self.path).mtime_nsec / 1e9 > 60
      except Exception:  # pylint: disable=broad-except
        return False
    try:
      return owner.get("host") == _HOST and not _pid_alive(int(owner["pid"]), owner.get("start"))
    except (KeyError, TypeError, ValueError):
      return False

  def _break(self, owner: dict) -> None:
    """Removes the stale lock `owner`, and only it (a racing waiter may have replaced it)."""
    if not io.is_local(self.path):
      io.remove(self.path)
      return
    aside = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
    try:
      os.rename(io.local_path(self.path), aside)
    except FileNotFoundError:
      return
    try:
      now = json.loads(open(aside, "rb").read().decode()) if os.path.getsize(aside) else {}
    except (OSError, ValueError):
      now = {}
    if now != owner:  # Not the stale lock we saw: put the live one back.
      try:
        os.link(aside, io.local_path(self.path))
      except OSError:
        pass
    os.unlink(aside)

  def _attempt(self) -> Optional[dict]:
    """Takes the lock (None), breaking a stale one, or returns the live owner."""
    while not self._try_create():
      owner = self._read()
      if owner is None:
        continue  # Released meanwhile.
      if not self._stale(owner):
        return owner
      logging.warning("%s: removing the stale lock %s of a dead process (pid %s on %s)",
                      self.what, self.path, owner.get("pid"), owner.get("host"))
      self._break(owner)
    return None

  def __enter__(self):
    start, logged, delay = time.time(), 0.0, 0.05
    while (owner := self._attempt()) is not None:
      waited = time.time() - start
      if self.timeout is not None and waited >= self.timeout:
        raise UserError(f"{self.what}: {self.path} is held by pid {owner.get('pid')} on "
                        f"{owner.get('host')} since {owner.get('since')}; wait for that run, or "
                        "delete the lock file if it is dead")
      if time.time() - logged > 30:
        logging.info("%s: waiting for pid %s on %s, which is building it (%s)", self.what,
                     owner.get("pid"), owner.get("host"), self.path)
        logged = time.time()
      time.sleep(delay)
      delay = min(1.0, delay * 1.5)
    return self

  def __exit__(self, *exc):
    if self._read() == self.owner:
      io.remove(self.path)
    else:
      logging.warning("%s: lock %s was taken over by another run", self.what, self.path)


def _tmp_name(uri: str) -> str:
  return f"{uri}.tmp-{os.getpid()}@{_HOST}-{uuid.uuid4().hex[:8]}"


def _remove_stale_temporaries(step_dir: str, uri: str) -> None:
  """Under `uri`'s lock: removes every `<uri>.tmp-*` (no live run can own one) and, in the step
  directory, temporaries of dead processes on this host. Links are unlinked, never followed."""
  for name in io.gfile.listdir(step_dir):
    name = name.rstrip("/")
    path = io.join(step_dir, name)
    m = _TMP.match(name)
    if m:
      mine = m["base"] == os.path.basename(uri)
      dead = m["host"] == _HOST and not _pid_alive(int(m["pid"]))
      if mine or dead:
        logging.info("removing the temporary %s of an interrupted run", path)
        io.remove(path)
    elif ".lock.stale-" in name and io.is_local(path):
      io.remove(path)


def _tidy(step_dir: str, uri: str, what: str) -> None:
  """After a cache hit: if a killed run left `uri`'s lock or temporaries, and no live run holds
  the lock, removes them (one listing when there is nothing to do)."""
  base = os.path.basename(uri)
  if not any(n.rstrip("/").startswith(base + ".tmp-") or n.rstrip("/") == base + ".lock"
             for n in io.gfile.listdir(step_dir)):
    return
  lock = _Lock(f"{uri}.lock", what)
  if lock._attempt() is None:  # pylint: disable=protected-access
    try:
      _remove_stale_temporaries(step_dir, uri)
    finally:
      lock.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------
# Commit.

def _move_objects(src: str, dst: str) -> None:
  """Object-store 'rename' of an artifact: copy every object, `metadata.json` last, then delete
  the source's marker first; interrupted anywhere, each side is complete or absent to readers."""
  names = [os.path.relpath(io.join(d, f), src) for d, _, fs in io.gfile.walk(src) for f in fs]
  for name in sorted(names, key=lambda n: n == METADATA):
    io.gfile.makedirs(os.path.dirname(io.join(dst, name)))
    io.gfile.copy(io.join(src, name), io.join(dst, name), overwrite=True)
  io.remove(io.join(src, METADATA))
  io.remove(src)


def _commit_objects(tmp: str, uri: str, meta: Mapping[str, Any]) -> None:
  """Commit on a store without atomic rename: payload objects, then each re-read and checked
  against its checksum, then the marker `metadata.json` last."""
  io.gfile.makedirs(uri)
  for name in sorted(meta["files"]) + list(meta.get("logs", [])):
    io.gfile.makedirs(os.path.dirname(io.join(uri, name)))
    io.gfile.copy(io.join(tmp, name), io.join(uri, name), overwrite=True)
  for name, digest in meta["files"].items():
    path = io.join(uri, name)
    if not io.exists(path) or _sha256_file(path) != digest:
      raise UserError(f"commit of {uri}: {name} is missing or differs after the copy; the store "
                      "is inconsistent, rerun the step")
  io.write_json(io.join(uri, METADATA), meta)  # The commit marker, last.
  io.remove(tmp)


def run(component: str, version: str, artifact_type: str, params: Mapping[str, Any],
        inputs: Mapping[str, Artifact], output_root: str,
        build: Callable[..., Optional[Mapping[str, Any]]], *, force: bool = False,
        flags: str = "", resumable: bool = False,
        lock_timeout: Optional[float] = None, chief: Optional[bool] = None) -> Artifact:
  """Returns the cached, verified artifact for (component, version, params, inputs), or builds it.

  Args:
    component: component name; also the sub-directory under `output_root`.
    version: code version of the component; bump it when outputs change for the same params.
    artifact_type: e.g. "Dataset", "HullDistances".
    params: JSON-serialisable parameters (everything that changes the payload).
    inputs: upstream artifacts by name.
    output_root: local or gs:// directory.
    build: called as `build(tmp_dir)`; writes the payload into `tmp_dir` and returns a JSON
      summary (shapes, metrics) recorded in the metadata.
    force: rebuild even on a cache hit (or over an artifact that fails verification); the old
      artifact is moved aside, never deleted.
    flags: resolved flags (`FLAGS.flags_into_string()`), recorded for provenance.
    resumable: call `build(tmp_dir, work_dir)` with a scratch directory `<uri>.work` that
      survives an interrupted build (Ctrl-C, a killed process), so the next run resumes from what
      it holds (e.g. training checkpoints); it is removed once the artifact is committed or the
      build fails with an error. Only the lock holder uses it.
    lock_timeout: seconds to wait for another live run building the same artifact (None: wait
      as long as it runs), or on a non-chief worker for the chief's commit; then UserError.
    chief: whether this process commits (None: `cluster.is_chief()`, true outside a multi-worker
      TF_CONFIG cluster). A non-chief runs `build` into a private temporary directory (deleted),
      writes nothing under `output_root`, and returns the chief's artifact once committed.

  Raises:
    UserError: the cached artifact fails verification (rerun with --force), the output root is
      not writable, the work directory is a link, or the lock wait timed out.
  """
  params = json.loads(canonical_json(params))  # Normalise tuples, numpy scalars.
  fp = fingerprint(component, version, params, inputs)
  step_dir = io.join(output_root, component)
  uri = io.join(step_dir, fp[:16])

  def cached() -> Optional[Artifact]:
    if force or not io.exists(io.join(uri, METADATA)):
      return None  # No marker: absent (a partial object-store commit is cleaned up below).
    art = load(uri, artifact_type, expected_fingerprint=fp)
    logging.info("%s: cache hit, reusing %s (verified)", component, uri)
    return art

  if chief is None:
    chief = cluster.is_chief()
  if not chief:
    return _follow_chief(component, artifact_type, fp, uri, build, force=force,
                         resumable=resumable, timeout=lock_timeout)
  if (art := cached()) is not None:
    _tidy(step_dir, uri, component)
    return art
  created = not io.exists(step_dir)
  try:
    io.gfile.makedirs(step_dir)
  except Exception as e:  # PermissionError, gfile errors (NotFound, PermissionDenied).
    raise UserError(f"cannot create {step_dir} ({type(e).__name__}); "
                    "pass a writable --output_root") from e
  work = f"{uri}.work"
  if resumable and io.is_symlink(work):
    raise UserError(f"{work} is a symbolic link; tfhull neither writes nor deletes through links: "
                    "remove the link (its target is left alone) and rerun")
  try:
    lock = _Lock(f"{uri}.lock", component, lock_timeout)
    with lock:
      if (art := cached()) is not None:
        return art  # Built by the run we waited for.
      _remove_stale_temporaries(step_dir, uri)
      return _build(component, version, artifact_type, params, inputs, fp, uri, build,
                    force=force, flags=flags, resumable=resumable)
  except BaseException:
    if created and io.exists(step_dir) and not io.gfile.listdir(step_dir):
      io.remove(step_dir)  # Leave nothing behind when the first build of a step fails.
    raise


# Seconds between looks for the chief's commit marker.
FOLLOW_POLL_S = 0.5


def _marker_checksum(uri: str) -> Optional[str]:
  """The `checksum` of `uri`'s commit marker, or None without a readable marker."""
  try:
    meta = io.read_json(io.join(uri, METADATA))
  except Exception:  # Absent, or being written.  pylint: disable=broad-except
    return None
  return meta.get("checksum") if isinstance(meta, dict) else None


def _follow_chief(component, artifact_type, fp, uri, build, *, force, resumable,
                  timeout) -> Artifact:
  """A non-chief worker's `run`: the chief's cached artifact, or the same build (collectives
  included) into a private local directory that is then deleted, and the chief's new commit."""
  if not force and io.exists(io.join(uri, METADATA)):
    return load(uri, artifact_type, expected_fingerprint=fp)
  before = _marker_checksum(uri) if force else None  # --force: wait for a marker other than this.
  scratch = tempfile.mkdtemp(prefix=f"tfhull-{component}-worker-")
  try:
    out, work = os.path.join(scratch, "out"), os.path.join(scratch, "work")
    os.mkdir(out)
    if resumable:
      _copy_tree(f"{uri}.work", work)  # Resume where the chief resumes (its checkpoint).
      build(out, work)
    else:
      build(out)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  start, logged = time.time(), time.time()
  logging.info("%s: %s waits for the chief to commit %s", component, cluster.task_name(), uri)
  while True:
    now = _marker_checksum(uri)
    if now is not None and now != before:
      return load(uri, artifact_type, expected_fingerprint=fp)
    if timeout is not None and time.time() - start >= timeout:
      raise UserError(f"{component}: the chief did not commit {uri} within {timeout:.0f}s; check "
                      "the chief's log (this worker writes no artifacts)")
    if time.time() - logged > 30:
      logging.info("%s: still waiting for the chief to commit %s", component, uri)
      logged = time.time()
    time.sleep(FOLLOW_POLL_S)


def _copy_tree(src: str, dst: str) -> None:
  """Copies the regular files under `src` (if any) to a new local directory `dst`."""
  os.makedirs(dst, exist_ok=True)
  if not io.exists(src) or io.is_symlink(src):
    return
  for dirpath, _, files in io.gfile.walk(src):
    for name in files:
      path = io.join(dirpath, name)
      if io.is_symlink(path):
        continue
      target = os.path.join(dst, os.path.relpath(path, src))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      io.gfile.copy(path, target, overwrite=True)


def _build(component, version, artifact_type, params, inputs, fp, uri, build, *, force, flags,
           resumable) -> Artifact:
  """Builds into a fresh temporary directory and commits it at `uri` (caller holds the lock)."""
  tmp, work = _tmp_name(uri), f"{uri}.work"
  if io.is_local(tmp):
    os.mkdir(io.local_path(tmp))  # Exclusive: never reuses (or follows) an existing entry.
  else:
    io.gfile.makedirs(tmp)
  start = time.time()
  logging.info("%s: building %s", component, uri)
  try:
    summary = dict((build(tmp, work) if resumable else build(tmp)) or {})
    payload = _payload_files(tmp)
    files = {name: _sha256_file(io.join(tmp, name)) for name in payload if not _is_log(name)}
    logs = [name for name in payload if _is_log(name)]
    meta = {
        "format": _FORMAT,
        "type": artifact_type,
        "component": component,
        "version": version,
        "params": params,
        "inputs": {k: {"uri": v.uri, "fingerprint": v.fingerprint, "type": v.type}
                   for k, v in sorted(inputs.items())},
        "fingerprint": fp,
        "files": files,
        "logs": logs,
        "summary": summary,
        "flags": flags,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - start, 3),
        "versions": versions(),
        "status": "complete",
    }
    meta = json.loads(canonical_json(meta))
    meta["checksum"] = _metadata_checksum(meta)
    if io.exists(uri):
      if io.exists(io.join(uri, METADATA)):  # A finished (or tampered) artifact: keep it.
        aside = f"{uri}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        if io.is_local(uri):
          os.rename(io.local_path(uri), io.local_path(aside))
        else:
          _move_objects(uri, aside)
        logging.info("%s: %s, previous artifact kept at %s", component,
                     "--force" if force else "rebuilding", aside)
      else:  # Objects of an interrupted object-store commit: never a result.
        logging.info("%s: removing the partial commit at %s", component, uri)
        io.remove(uri)
    if io.is_local(uri):
      io.write_json(io.join(tmp, METADATA), meta)  # Commit marker, then one atomic rename.
      os.rename(io.local_path(tmp), io.local_path(uri))
    else:
      _commit_objects(tmp, uri, meta)
  except BaseException as e:
    if io.exists(tmp) or io.is_symlink(tmp):
      io.remove(tmp)
    if resumable and isinstance(e, Exception) and (io.exists(work) or io.is_symlink(work)):
      io.remove(work)  # An error, not an interruption: nothing worth resuming.
    raise
  if resumable and (io.exists(work) or io.is_symlink(work)):
    io.remove(work)
  logging.info("%s: wrote %s in %.1fs", component, uri, meta["wall_seconds"])
  return Artifact(uri=uri, metadata=meta)


def versions() -> dict[str, str]:
  """Versions of tfhull, Python and the installed numeric packages."""
  out = {"tfhull": tfhull.__version__, "python": platform.python_version()}
  found = environment.package_versions(("numpy", "tensorflow", "keras", "jax"))
  out.update({k: v for k, v in found.items() if v is not None})
  return out
