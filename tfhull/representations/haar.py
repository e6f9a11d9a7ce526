"""Orthonormal 2-D Haar wavelet transform in TensorFlow, and the `--representation` spec.

On each 2x2 block [a b; c d] one level computes
  LL = (a+b+c+d)/2, LH = (a-b+c-d)/2, HL = (a+b-c-d)/2, HH = (a-b-c+d)/2,
an orthonormal map, so norms and all pairwise (hence hull) distances are preserved.
Coefficients use the Mallat layout: after one level an (h, w) block becomes
[LL LH; HL HH] with each band (h/2, w/2); further levels recurse on the LL block,
so the level-L approximation sits in the top-left (H/2**L, W/2**L) corner.
Channels are transformed independently.
"""

import dataclasses
import re
from typing import Optional, Tuple

import numpy as np

from tfhull.errors import UserError

_VALID_FORMS = "pixel, haar:LEVEL, haar:LEVEL:topK (e.g. haar:1:top500), layer:NAME, logits"


@dataclasses.dataclass(frozen=True)
class Representation:
  """A parsed `--representation` spec."""
  kind: str                     # 'pixel', 'haar', 'layer' or 'logits'.
  level: Optional[int] = None   # Haar levels (>= 1), for kind 'haar'.
  top_k: Optional[int] = None   # Keep the top_k highest-variance coefficients; None keeps all.
  layer: Optional[str] = None   # Layer name, for kind 'layer'.

  @property
  def spec(self) -> str:
    """The canonical spec string, which `parse_representation` maps back to this."""
    if self.kind == "haar":
      return f"haar:{self.level}" + (f":top{self.top_k}" if self.top_k is not None else "")
    if self.kind == "layer":
      return f"layer:{self.layer}"
    return self.kind


def parse_representation(spec: str) -> Representation:
  """Parses `pixel`, `haar:LEVEL`, `haar:LEVEL:topK`, `layer:NAME` or `logits`.

  Raises:
    UserError: for any other spec, naming the valid forms.
  """
  def bad(why):
    return UserError(f"bad representation {spec!r}: {why}; valid forms: {_VALID_FORMS}")

  if not isinstance(spec, str):
    raise bad("not a string")
  s = spec.strip()
  kind, _, rest = s.partition(":")
  if kind in ("pixel", "logits"):
    if rest or s != kind:
      raise bad(f"'{kind}' takes no arguments")
    return Representation(kind=kind)
  if kind == "layer":
    if not rest:
      raise bad("missing layer name")
    return Representation(kind="layer", layer=rest)
  if kind == "haar":
    parts = rest.split(":")
    if not re.fullmatch(r"[1-9][0-9]*", parts[0]):
      raise bad("LEVEL must be a positive integer")
    if len(parts) == 1:
      return Representation(kind="haar", level=int(parts[0]))
    if len(parts) == 2:
      m = re.fullmatch(r"top([1-9][0-9]*)", parts[1])
      if not m:
        raise bad("the selection must be topK with K a positive integer")
      return Representation(kind="haar", level=int(parts[0]), top_k=int(m.group(1)))
    raise bad("too many ':' fields")
  raise bad(f"unknown kind {kind!r}")


def _check(shape, level: int, pad: bool):
  """Returns the static (H, W) to pad to; raises UserError if the shape does not fit `level`."""
  if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 1:
    raise UserError(f"Haar level must be a positive integer, got {level!r}")
  if len(shape) != 4 or shape[1] is None or shape[2] is None:
    raise UserError(f"Haar transform needs images (N, H, W, C) with static H and W, got {shape}")
  m = 2 ** int(level)
  h, w = int(shape[1]), int(shape[2])
  ph, pw = -(-h // m) * m, -(-w // m) * m
  if (ph, pw) != (h, w) and not pad:
    raise UserError(f"Haar level {level} needs H and W divisible by {m}, got {h}x{w}; use a "
                    f"lower level or pad=True (zero-pads to {ph}x{pw})")
  return ph, pw


def haar2d(images, level: int, pad: bool = False):
  """Forward orthonormal Haar transform, `level` levels, Mallat layout (see module doc).

  Args:
    images: (N, H, W, C) float tensor; H and W static.
    level: number of levels, >= 1; H and W must be divisible by 2**level unless `pad`.
    pad: zero-pad the bottom and right to the next multiple of 2**level (the output is
      then the padded size; zero padding keeps norms and distances).
  Returns:
    (N, H', W', C) coefficients, (H', W') = (H, W) or the padded size.
  Raises:
    UserError: H or W not divisible by 2**level (and not `pad`), or a bad level.
  Works eagerly and inside `tf.function(jit_compile=True)`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = tf.convert_to_tensor(images)
  ph, pw = _check(x.shape, level, pad)
  if (ph, pw) != tuple(x.shape[1:3]):
    x = tf.pad(x, [[0, 0], [0, ph - x.shape[1]], [0, pw - x.shape[2]], [0, 0]])
  for l in range(level):
    h, w = ph >> l, pw >> l
    blk = x[:, :h, :w]
    a, b = blk[:, 0::2, 0::2], blk[:, 0::2, 1::2]
    c, d = blk[:, 1::2, 0::2], blk[:, 1::2, 1::2]
    ll, lh = (a + b + c + d) / 2, (a - b + c - d) / 2
    hl, hh = (a + b - c - d) / 2, (a - b - c + d) / 2
    blk = tf.concat([tf.concat([ll, lh], 2), tf.concat([hl, hh], 2)], 1)
    x = tf.concat([tf.concat([blk, x[:, :h, w:]], 2), x[:, h:]], 1)
  return x


def inverse_haar2d(coeffs, level: int):
  """Inverse of `haar2d` (without padding): (N, H, W, C) coefficients -> (N, H, W, C) images.

  Crop the result yourself if the forward pass padded.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = tf.convert_to_tensor(coeffs)
  hh_, ww_ = _check(x.shape, level, pad=False)
  n, ch = tf.shape(x)[0], tf.shape(x)[3]
  for l in reversed(range(level)):
    h, w = hh_ >> l, ww_ >> l
    h2, w2 = h // 2, w // 2
    ll, lh = x[:, :h2, :w2], x[:, :h2, w2:w]
    hl, hh = x[:, h2:h, :w2], x[:, h2:h, w2:w]
    a, b = (ll + lh + hl + hh) / 2, (ll - lh + hl - hh) / 2
    c, d = (ll + lh - hl - hh) / 2, (ll - lh - hl + hh) / 2
    top = tf.reshape(tf.stack([a, b], 3), [n, h2, w, ch])     # Interleave columns.
    bottom = tf.reshape(tf.stack([c, d], 3), [n, h2, w, ch])
    blk = tf.reshape(tf.stack([top, bottom], 2), [n, h, w, ch])  # Interleave rows.
    x = tf.concat([tf.concat([blk, x[:, :h, w:]], 2), x[:, h:]], 1)
  return x


def _transform_flat(x: np.ndarray, level: int, pad: bool, batch: int) -> np.ndarray:
  """(N, H, W[, C]) numpy -> (N, D) float32 Haar coefficients, in batches."""
  x = np.asarray(x, dtype=np.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    raise UserError(f"Haar features need images (N, H, W) or (N, H, W, C), got shape {x.shape}")
  ph, pw = _check((None,) + x.shape[1:], level, pad)
  out = np.empty((x.shape[0], ph * pw * x.shape[3]), np.float32)
  for i in range(0, x.shape[0], batch):
    out[i:i + batch] = haar2d(x[i:i + batch], level, pad).numpy().reshape(-1, out.shape[1])
  return out


def haar_features(x_train, x_test, level: int, top_k: Optional[int] = None, *,
                  pad: bool = False, batch: int = 4096
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Flattened Haar coefficients of both splits, optionally the top_k by training variance.

  Args:
    x_train: (n, H, W[, C]) images; x_test: (q, H, W[, C]).
    level, pad: as in `haar2d`.
    top_k: keep the k coefficients with the largest training-set variance (ties: lower index
      first); None keeps all, in which case distances equal those between the pixels.
    batch: images per transform call.
  Returns:
    train (n, k) float32, test (q, k) float32, and the (k,) int64 indices into the flattened
    (H', W', C) coefficients, sorted by decreasing variance (all indices, in order, if no top_k).
  Raises:
    UserError: bad shapes or level, mismatched image sizes, or top_k outside [1, D].
  """
  train = _transform_flat(x_train, level, pad, batch)
  test = _transform_flat(x_test, level, pad, batch)
  if train.shape[1] != test.shape[1]:
    raise UserError(f"train and test images differ in size ({np.shape(x_train)[1:]} vs "
                    f"{np.shape(x_test)[1:]})")
  dim = train.shape[1]
  if top_k is None:
    return train, test, np.arange(dim, dtype=np.int64)
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= dim:
    raise UserError(f"top_k must be an integer in [1, {dim}] (the number of Haar coefficients), "
                    f"got {top_k!r}")
  var = train.astype(np.float64).var(axis=0)
  order = np.lexsort((np.arange(dim), -var))[:top_k].astype(np.int64)
  return train[:, order], test[:, order], order
