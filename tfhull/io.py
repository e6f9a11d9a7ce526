"""File helpers on `tf.io.gfile`, so every path may be local or `gs://`.

Loading is safe for artifacts from shared buckets: npz files are read with
`allow_pickle=False`, structured data is JSON, never pickle. Names read from files (an index's
"file" entry, a metadata `files` key) go through `check_name` / `confined_path`, and nothing here
writes or deletes through a symbolic link (`remove`, `is_symlink`).
"""

import io
import json
import os
import shutil
import stat
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tfhull.errors import UserError

gfile = tf.io.gfile


join = os.path.join  # Also right for gs:// URIs on POSIX.


def exists(path: str) -> bool:
  return gfile.exists(path)


def is_local(path: str) -> bool:
  """True for paths on the local filesystem (no scheme, or file://)."""
  return "://" not in path or path.startswith("file://")


def local_path(path: str) -> str:
  return path[len("file://"):] if path.startswith("file://") else path


def check_name(name: Any, where: str) -> str:
  """Returns `name` if it is a relative, normalised path (no `..`, `.`, empty part, backslash or
  scheme) that stays inside a directory; raises UserError naming `where` otherwise."""
  ok = (isinstance(name, str) and name and "\\" not in name and "\0" not in name
        and "://" not in name and not name.startswith("/")
        and all(part not in ("", ".", "..") for part in name.split("/")))
  if not ok:
    raise UserError(f"{where}: file name {name!r} is not a plain relative path inside it; the "
                    "directory was edited or is corrupt, rerun the step that writes it with --force")
  return name


def confined_path(directory: str, name: Any, where: str = "") -> str:
  """`directory/name` for a `name` read from a file (an index entry), checked to stay inside
  `directory`: relative, no `..`, and (locally) no symbolic link on the way and a regular file at
  the end, checked with lstat before anything is opened (so `/dev/zero` or a link cannot hang or
  escape a reader). Raises UserError otherwise."""
  where = where or directory
  path = join(directory, check_name(name, where))
  if not is_local(path):
    return path  # Object stores have no links or devices.
  cur = local_path(directory)
  parts = name.split("/")
  for i, part in enumerate(parts):
    cur = os.path.join(cur, part)
    try:
      st = os.lstat(cur)
    except FileNotFoundError:
      raise UserError(f"{where}: {name} is missing; rerun the step that writes it with "
                      "--force") from None
    last = i == len(parts) - 1
    if stat.S_ISLNK(st.st_mode) or (last and not stat.S_ISREG(st.st_mode)) or (
        not last and not stat.S_ISDIR(st.st_mode)):
      kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
      raise UserError(f"{where}: {name} is {kind}; artifacts hold regular files only, rerun the "
                      "step that writes it with --force")
  return path


def is_symlink(path: str) -> bool:
  return is_local(path) and os.path.islink(local_path(path))


def remove(path: str) -> None:
  """Deletes a file or directory tree without following symbolic links: a link is unlinked, its
  target left intact (gfile.rmtree would follow a local link and empty the target)."""
  if not is_local(path):
    if gfile.isdir(path):
      gfile.rmtree(path)
    elif gfile.exists(path):
      gfile.remove(path)
    return
  p = local_path(path)
  if os.path.islink(p) or (os.path.lexists(p) and not os.path.isdir(p)):
    os.unlink(p)
  elif os.path.isdir(p):
    shutil.rmtree(p)  # Unlinks links inside rather than following them.


def write_bytes(path: str, data: bytes) -> None:
  with gfile.GFile(path, "wb") as f:
    f.write(data)


def read_bytes(path: str) -> bytes:
  with gfile.GFile(path, "rb") as f:
    return f.read()


def write_json(path: str, obj: Any) -> None:
  write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def read_json(path: str) -> Any:
  try:
    return json.loads(read_bytes(path).decode())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"{path} is not valid JSON ({e}); delete it or rerun the step with --force") from e


def save_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes arrays to a compressed .npz at `path` (local or gs://)."""
  buf = io.BytesIO()
  np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
  write_bytes(path, buf.getvalue())


def load_npz(path: str) -> dict[str, np.ndarray]:
  """Reads every array of an .npz (no pickled objects allowed)."""
  if not gfile.exists(path):
    raise UserError(f"{path} does not exist; check the path or rerun the step that writes it")
  try:
    with np.load(io.BytesIO(read_bytes(path)), allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except ValueError as e:
    raise UserError(f"{path} holds pickled objects or is corrupt ({e}); regenerate it") from e
  except Exception as e:  # zipfile.BadZipFile, EOFError, OSError on truncation.
    raise UserError(f"{path} is corrupt or truncated ({type(e).__name__}: {e}); regenerate it") from e


def _json_default(o):
  if isinstance(o, np.generic):
    return o.item()
  if isinstance(o, np.ndarray):
    return o.tolist()
  if isinstance(o, (set, frozenset, tuple)):
    return list(o)
  raise TypeError(f"not JSON serialisable: {type(o).__name__}")
