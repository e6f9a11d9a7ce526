"""Backend glue for the solver: XLA compilation, full-precision matmuls, replica placement.

The numeric core (`kernels.py`) is plain `keras.ops`; this module is the only place that knows
which Keras backend runs it. TensorFlow is imported only under the TensorFlow backend, so
`import tfhull.hull` works where only JAX is installed (`KERAS_BACKEND=jax`).
"""

import contextlib
import functools
from typing import Any, Callable, Optional, Sequence

import keras
import numpy as np


def name() -> str:
  return keras.backend.backend()


# XLA:CPU compiler options per kernel under JAX (by function name). jaxlib's XLA:CPU hands batched
# dots to YNNPACK ("ynn fusions"); for insertion's many small (m, d) x (d, K) products that ran
# 1.6x slower than XLA's own dot (benchmark solve, d = 784, n = 10,000, B = 256: 107 -> 67 ms
# CPU per insert_gram call, as under TensorFlow's XLA), while the pricing GEMM is faster with
# YNNPACK, so only these opt out.
_NO_YNN = (("xla_cpu_experimental_ynn_fusion_type", ""),)
_JAX_CPU_OPTIONS = {"insert_gram": _NO_YNN, "insert_atoms": _NO_YNN}
# Arguments donated under JAX (by function name): state replaced by the call's outputs, whose
# buffers XLA then updates in place. insert_atoms' (B, K, d) working set was copied on every
# call otherwise (B = 256, K = 128, d = 784: 118 -> 53 ms CPU per call). Callers must not touch
# a donated input after the call (JAX raises "Array has been deleted").
_JAX_DONATE = {"insert_atoms": (0, 1, 2)}  # slots, vecs, gram.


def _jax_options(fn: Callable[..., Any]) -> Optional[dict]:
  import jax  # pylint: disable=g-import-not-at-top
  options = _JAX_CPU_OPTIONS.get(getattr(fn, "__name__", ""))
  return dict(options) if options and jax.default_backend() == "cpu" else None


@functools.lru_cache(maxsize=64)
def _compiled(fn: Callable[..., Any], backend_name: str, static: tuple) -> Callable[..., Any]:
  del backend_name  # Part of the cache key only.
  options = _jax_options(fn) if name() == "jax" else None
  donate = _JAX_DONATE.get(getattr(fn, "__name__", ""), ())
  fn = functools.partial(fn, **dict(static))
  if name() == "tensorflow":
    return _PerSignature(fn)
  if name() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return jax.jit(fn, compiler_options=options, donate_argnums=donate)
  raise RuntimeError(f"tfhull.hull supports the tensorflow and jax Keras backends, not {name()!r}; "
                     "set KERAS_BACKEND=tensorflow or jax")


def _signature(value) -> Any:
  shape = getattr(value, "shape", None)
  if shape is not None and hasattr(value, "dtype"):
    return ("array", tuple(shape), str(value.dtype))
  if isinstance(value, (tuple, list)):
    return tuple(_signature(v) for v in value)
  if isinstance(value, (int, float, bool, str, type(None))):
    return ("value", type(value).__name__, value)
  return ("object", type(value).__name__)  # tf.function's own tracing rules decide.


class _PerSignature:
  """One XLA-compiled tf.function per argument signature (shapes, dtypes, Python values).

  A solve traces once per shape anyway (XLA compiles static shapes), but one tf.function object
  shared by every space and split of a study would see each new (n, d) as a retrace and warn
  about "excessive retracing"; separate objects per signature trace exactly once each.
  """

  _jit_compile = True  # As tf.function(jit_compile=True) reports it.

  def __init__(self, fn):
    self._fn = fn
    self._by_signature = {}

  def __call__(self, *args, **kwargs):
    key = (_signature(args), _signature(tuple(sorted(kwargs.items()))))
    compiled = self._by_signature.get(key)
    if compiled is None:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      if len(self._by_signature) >= 256:  # Bounded: drop the oldest.
        self._by_signature.pop(next(iter(self._by_signature)))
      # A fresh partial per signature: TensorFlow counts traces per Python callable and would
      # warn about "excessive retracing" of one shared by every shape (it is one trace each).
      compiled = self._by_signature[key] = tf.function(functools.partial(self._fn),
                                                       jit_compile=True)
    return compiled(*args, **kwargs)


def compile_fn(fn: Callable[..., Any], **static) -> Callable[..., Any]:
  """XLA-compiles `fn` with keyword arguments `static` baked in (Python values, not traced).

  Compiled functions are cached per (fn, backend, static values), so repeated solver calls
  reuse traces and XLA executables. Under JAX, the inputs listed in `_JAX_DONATE` are consumed.
  """
  return _compiled(fn, name(), tuple(sorted(static.items())))


@contextlib.contextmanager
def full_precision_matmuls():
  """True float32 (or float64) matmuls: TF32 off in TensorFlow, 'highest' precision in JAX.

  TensorFlow enables TF32 for float32 matmuls on Ampere and newer GPUs by default, and JAX uses
  reduced-precision passes on TPU and GPU; either would spoil the certifying products.
  """
  if name() == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
      yield
    finally:
      tf.config.experimental.enable_tensor_float_32_execution(before)
  elif name() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    with jax.default_matmul_precision("highest"):
      yield
  else:
    yield


def to_device(x: np.ndarray, device: Optional[str] = None):
  """Converts a host array to a backend tensor (optionally on a named TF device)."""
  if device is not None and name() == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.device(device):
      return tf.identity(tf.convert_to_tensor(x))
  if name() == "jax" and isinstance(x, (np.ndarray, np.generic)):
    import jax  # pylint: disable=g-import-not-at-top
    return jax.device_put(x)  # Same array as convert_to_tensor (dtype canonicalised), less glue.
  return keras.ops.convert_to_tensor(x)


def to_numpy(x) -> np.ndarray:
  return np.asarray(keras.ops.convert_to_numpy(x))


def check_strategy(strategy) -> None:
  if strategy is not None and name() != "tensorflow":
    raise ValueError("a tf.distribute strategy needs KERAS_BACKEND=tensorflow; under JAX leave "
                     "strategy=None (jax.jit runs on the default device)")


def replica_devices(strategy) -> Sequence[str]:
  return tuple(strategy.extended.worker_devices)
