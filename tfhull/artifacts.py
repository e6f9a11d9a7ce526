"""TFX-style artifacts without TFX: fingerprinted, cached, atomically committed directories.

An artifact is a directory `<output_root>/<component>/<fingerprint[:16]>/` holding a payload and a
`metadata.json`. The fingerprint is sha256 over the component name, its code version, the
canonical JSON of its params and the fingerprints of its input artifacts, so the same inputs and
params always map to the same directory (a cache hit recomputes nothing).

Commit protocol: the payload is written into a sibling temporary directory, `metadata.json` last
(with per-file sha256 checksums and `status: complete`), then the directory is renamed into place.
A directory without a complete `metadata.json` is never read as a result; on `gs://`, where renames
are not atomic, that marker is what counts. `--force` recomputes, and the finished artifact it
replaces is moved aside (`<uri>.replaced-<time>`), never deleted.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import sys
import time
import uuid
from typing import Any, Callable, Mapping, Optional

from absl import logging

import tfhull
from tfhull import io
from tfhull.errors import UserError

METADATA = "metadata.json"
_FORMAT = 1


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
    return io.join(self.uri, name)


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


def _sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with io.gfile.GFile(path, "rb") as f:
    while chunk := f.read(1 << 22):
      h.update(chunk)
  return h.hexdigest()


def _payload_files(root: str) -> list[str]:
  out = []
  for dirpath, _, files in io.gfile.walk(root):
    for name in files:
      rel = os.path.relpath(io.join(dirpath, name), root)
      if rel != METADATA:
        out.append(rel)
  return sorted(out)


def load(uri: str, expected_type: Optional[str] = None, verify: bool = True) -> Artifact:
  """Loads and checks a finished artifact; raises UserError if it is missing, partial or corrupt.

  Checks: `metadata.json` parses, `status == complete`, the type matches, the fingerprint recomputes
  from the recorded fields, and (with `verify`) every payload file matches its recorded sha256.
  """
  uri = uri.rstrip("/")
  meta_path = io.join(uri, METADATA)
  if not io.exists(meta_path):
    raise UserError(f"{uri} is not a finished artifact (no {METADATA}); rerun the step that writes it")
  meta = io.read_json(meta_path)
  if not isinstance(meta, dict) or meta.get("status") != "complete":
    raise UserError(f"{uri} is an incomplete artifact; delete it or rerun with --force")
  if expected_type and meta.get("type") != expected_type:
    raise UserError(f"{uri} is a {meta.get('type')} artifact, expected {expected_type}; "
                    "pass the directory of the right step")
  try:
    inputs = {k: _InputRef(v["fingerprint"]) for k, v in meta["inputs"].items()}
    fp = fingerprint(meta["component"], meta["version"], meta["params"], inputs)
  except (KeyError, TypeError) as e:
    raise UserError(f"{meta_path} lacks field {e}; the artifact is stale or corrupt, rerun with --force") from e
  if fp != meta.get("fingerprint"):
    raise UserError(f"{meta_path} fingerprint does not match its contents; the artifact was edited or "
                    "is corrupt, rerun with --force")
  if verify:
    for name, digest in meta.get("files", {}).items():
      path = io.join(uri, name)
      if not io.exists(path) or _sha256_file(path) != digest:
        raise UserError(f"{path} is missing or does not match its checksum; rerun the step with --force")
  return Artifact(uri=uri, metadata=meta)


@dataclasses.dataclass(frozen=True)
class _InputRef:
  fingerprint: str


def run(component: str, version: str, artifact_type: str, params: Mapping[str, Any],
        inputs: Mapping[str, Artifact], output_root: str,
        build: Callable[..., Optional[Mapping[str, Any]]], *, force: bool = False,
        flags: str = "", resumable: bool = False) -> Artifact:
  """Returns the cached artifact for (component, version, params, inputs), or builds it.

  Args:
    component: component name; also the sub-directory under `output_root`.
    version: code version of the component; bump it when outputs change for the same params.
    artifact_type: e.g. "Dataset", "HullDistances".
    params: JSON-serialisable parameters (everything that changes the payload).
    inputs: upstream artifacts by name.
    output_root: local or gs:// directory.
    build: called as `build(tmp_dir)`; writes the payload into `tmp_dir` and returns a JSON
      summary (shapes, metrics) recorded in the metadata.
    force: rebuild even on a cache hit; the old artifact is moved aside, never deleted.
    flags: resolved flags (`FLAGS.flags_into_string()`), recorded for provenance.
    resumable: call `build(tmp_dir, work_dir)` with a scratch directory `<uri>.work` that
      survives an interrupted build (Ctrl-C, a killed process), so the next run resumes from what
      it holds (e.g. training checkpoints); it is removed once the artifact is committed or the
      build fails with an error.
  """
  params = json.loads(canonical_json(params))  # Normalise tuples, numpy scalars.
  fp = fingerprint(component, version, params, inputs)
  uri = io.join(output_root, component, fp[:16])
  if io.exists(io.join(uri, METADATA)) and not force:
    try:
      art = load(uri, artifact_type, verify=False)
      logging.info("%s: cache hit, reusing %s", component, uri)
      return art
    except UserError as e:
      raise UserError(f"cached {component} artifact at {uri} is unusable ({e}); rerun with --force") from e

  try:
    io.gfile.makedirs(io.join(output_root, component))
  except Exception as e:  # PermissionError, gfile errors (NotFound, PermissionDenied).
    raise UserError(f"cannot create {io.join(output_root, component)} ({type(e).__name__}); "
                    "pass a writable --output_root") from e
  tmp = f"{uri}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
  work = f"{uri}.work"
  io.gfile.makedirs(tmp)
  start = time.time()
  logging.info("%s: building %s", component, uri)
  try:
    summary = dict((build(tmp, work) if resumable else build(tmp)) or {})
    files = {name: _sha256_file(io.join(tmp, name)) for name in _payload_files(tmp)}
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
        "summary": summary,
        "flags": flags,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - start, 3),
        "versions": versions(),
        "status": "complete",
    }
    io.write_json(io.join(tmp, METADATA), meta)  # Commit marker, written last.
    if io.exists(uri):
      aside = f"{uri}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
      io.gfile.rename(uri, aside)
      logging.info("%s: --force, previous artifact kept at %s", component, aside)
    io.gfile.rename(tmp, uri)
  except BaseException as e:
    if io.exists(tmp):
      io.gfile.rmtree(tmp)
    if resumable and isinstance(e, Exception) and io.exists(work):
      io.gfile.rmtree(work)  # An error, not an interruption: nothing worth resuming.
    step_dir = io.join(output_root, component)
    if io.exists(step_dir) and not io.gfile.listdir(step_dir):
      io.gfile.rmtree(step_dir)  # Leave nothing behind when the first build of a step fails.
    raise
  if resumable and io.exists(work):
    io.gfile.rmtree(work)
  logging.info("%s: wrote %s in %.1fs", component, uri, meta["wall_seconds"])
  return Artifact(uri=uri, metadata=meta)


def versions() -> dict[str, str]:
  """Versions of tfhull, Python and the loaded numeric packages."""
  out = {"tfhull": tfhull.__version__, "python": platform.python_version()}
  for mod in ("numpy", "tensorflow", "keras", "jax"):
    m = sys.modules.get(mod)
    if m is not None:
      out[mod] = getattr(m, "__version__", "?")
  return out
