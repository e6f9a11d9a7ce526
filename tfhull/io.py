"""File helpers on `tf.io.gfile`, so every path may be local or `gs://`.

Loading is safe for artifacts from shared buckets: npz files are read with
`allow_pickle=False`, structured data is JSON, never pickle.
"""

import io
import json
import os
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tfhull.errors import UserError

gfile = tf.io.gfile


join = os.path.join  # Also right for gs:// URIs on POSIX.


def exists(path: str) -> bool:
  return gfile.exists(path)


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
