"""Carlini-Wagner L2 attack (Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural
Networks"), written for TF 2 + Keras 3 with static shapes.

  result = carlini_wagner_l2(model, x_test, y_test, batch_size=128)
  result.x_adv, result.l2, result.success, result.const

Per example, minimizes ||x' - x||_2^2 + c * f(x') over x' = clip_min + (tanh(w) + 1) / 2 *
(clip_max - clip_min), with f(x') = max(Z_y - max_{i != y} Z_i, -confidence) (untargeted) or
max(max_{i != t} Z_i - Z_t, -confidence) (targeted) on the logits Z, by Adam on w; a binary
search over c per example; keeps the smallest-L2 adversarial found.

cleverhans 4.0.0's `carlini_wagner_l2` fails under Keras 3 and on flat or RGB inputs
(notes/dependencies.md section 5); this is an independent implementation. Every batch is padded
to `batch_size` (the padding is masked out of the loss), one modifier variable and one Keras Adam
optimizer serve all batches and binary-search steps (reset by assignment), and the whole binary
search of one batch, inner Adam loop included, runs in one `tf.function` compiled with XLA
(`jit_compile=True`); a model_fn with ops XLA cannot compile falls back to a plain tf.function.
Each call builds and compiles the attack once (about 1 s on CPU for a small MLP); then 5 x 200
steps on 8x8 digits run at about 500 examples/s on 2 CPU cores. Early abort, as in the paper,
watches the loss of the whole batch, so with abort_early=True an example's result can depend on
the other examples in its batch; with abort_early=False examples are independent.
"""

import dataclasses
from typing import Any, Callable

from absl import logging
import numpy as np

from tfhull.errors import UserError

_NO_UPPER = 1e10   # upper bound of c before any success (as in the paper's code).
_NOT_FOUND = 1e10  # squared L2 marking "no adversarial found yet".


@dataclasses.dataclass
class CWResult:
  """The attack's output for n examples."""
  x_adv: np.ndarray      # (n, *input_shape) float32 in [clip_min, clip_max]; x where not found.
  l2: np.ndarray         # (n,) float32 L2 norm of x_adv - x, input units (0 where not found).
  success: np.ndarray    # (n,) bool: model label at x_adv != y (untargeted) / == y (targeted).
  const: np.ndarray      # (n,) float32 c of the last binary-search step.


def _check(x: np.ndarray, y: np.ndarray, *, batch_size: int, binary_search_steps: int,
           max_iterations: int, learning_rate: float, initial_const: float, confidence: float,
           clip_min: float, clip_max: float) -> None:
  """Raises UserError on inputs no attack can use (label range is checked against the model)."""
  if batch_size < 1:
    raise UserError(f"batch_size={batch_size} must be >= 1")
  if binary_search_steps < 1 or max_iterations < 1:
    raise UserError(f"binary_search_steps={binary_search_steps} and "
                    f"max_iterations={max_iterations} must be >= 1")
  if not (learning_rate > 0 and np.isfinite(learning_rate)):
    raise UserError(f"learning_rate={learning_rate} must be a positive number")
  if not (initial_const > 0 and np.isfinite(initial_const)):
    raise UserError(f"initial_const={initial_const} must be a positive number")
  if not (confidence >= 0 and np.isfinite(confidence)):
    raise UserError(f"confidence={confidence} must be a number >= 0")
  if not (np.isfinite(clip_min) and np.isfinite(clip_max) and clip_min < clip_max):
    raise UserError(f"need finite clip_min < clip_max, got [{clip_min}, {clip_max}]")
  if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
    raise UserError(f"x of shape {x.shape} and y of shape {y.shape} do not match; "
                    "need x (n, *input_shape) and y (n,)")
  if not np.all(np.isfinite(x)):
    raise UserError("x has non-finite values (nan or inf)")
  if x.size and (x.min() < clip_min or x.max() > clip_max):
    raise UserError(f"x has values in [{x.min():g}, {x.max():g}], outside "
                    f"[clip_min, clip_max] = [{clip_min:g}, {clip_max:g}]")
  if y.dtype.kind not in "iub" and (y.dtype.kind != "f" or np.any(y != np.round(y))):
    raise UserError(f"y must hold integer class labels, got dtype {y.dtype}")


def _build_attack(model_fn: Callable[[Any], Any], shape: tuple, num_classes: int, *,
                  targeted: bool, binary_search_steps: int, max_iterations: int,
                  learning_rate: float, initial_const: float, confidence: float,
                  abort_early: bool, clip_min: float, clip_max: float, jit_compile: bool):
  """The per-batch attack: tf.function (x (B, ...), onehot (B, c), valid (B,)) ->
  (best_x (B, ...), best squared L2 (B,) (_NOT_FOUND where none), c of the last step (B,))."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  modifier = tf.Variable(tf.zeros(shape), trainable=True, name="cw_modifier")
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build([modifier])
  # Adam's state is the iteration counter and the two slots shaped like the modifier; its
  # learning-rate variable must survive the reset (zeroing it would freeze the attack).
  slots = [v for v in optimizer.variables if tuple(v.shape) == tuple(shape)]
  if len(slots) != 2:
    raise RuntimeError(f"expected Adam's momentum and velocity slots, found {slots}")
  state = [optimizer.iterations, *slots]

  axes = list(range(1, len(shape)))
  half_range = (clip_max - clip_min) / 2.0
  period = max(1, max_iterations // 10)  # early-abort check period, as in the paper.
  repeat = binary_search_steps >= 10     # the paper's last step retries c = upper bound.

  def to_input(w):
    return (tf.tanh(w) + 1.0) * half_range + clip_min

  def expand(mask):  # (B,) -> (B, 1, ..., 1) to select whole examples.
    return tf.reshape(mask, [-1] + [1] * len(axes))

  def reset():
    modifier.assign(tf.zeros(shape))
    for v in state:
      v.assign(tf.zeros(v.shape, v.dtype))

  def adam_step(w0, x, onehot, valid, const):
    """One Adam step; returns x', loss, logits and squared L2 at the point before the step."""
    with tf.GradientTape() as tape:
      x_new = to_input(w0 + modifier)
      logits = tf.ensure_shape(tf.cast(model_fn(x_new), tf.float32), (shape[0], num_classes))
      l2sq = tf.reduce_sum(tf.square(x_new - x), axes)
      real = tf.reduce_sum(onehot * logits, 1)
      other = tf.reduce_max(tf.where(onehot > 0, tf.float32.min, logits), 1)
      margin = other - real if targeted else real - other
      f = tf.maximum(margin, -confidence)
      loss = tf.reduce_sum(valid * (l2sq + const * f))
    grad = tape.gradient(loss, modifier)
    optimizer.apply_gradients([(grad, modifier)])
    return x_new, loss, logits, l2sq

  def is_adversarial(logits, onehot):
    labels = tf.argmax(onehot, 1)
    shift = -confidence if targeted else confidence
    pred = tf.argmax(logits + shift * onehot, 1)
    return tf.equal(pred, labels) if targeted else tf.not_equal(pred, labels)

  def attack(x, onehot, valid):
    unit = (x - clip_min) / (clip_max - clip_min) * 2.0 - 1.0
    w0 = tf.atanh(tf.clip_by_value(unit, -1.0, 1.0) * 0.999999)
    batch = shape[0]
    is_valid = valid > 0

    def search_step(k, const, lower, upper, best_l2, best_x, used):
      if repeat:
        const = tf.where(tf.equal(k, binary_search_steps - 1), upper, const)
      reset()

      def inner(i, prev, stop, found, best_l2, best_x):
        x_new, loss, logits, l2sq = adam_step(w0, x, onehot, valid, const)
        if abort_early:
          check = tf.equal(i % period, 0)
          stop = check & (loss > prev * 0.9999)
          prev = tf.where(check, loss, prev)
        success = is_adversarial(logits, onehot) & is_valid
        better = success & (l2sq < best_l2)
        return (i + 1, prev, stop, found | success, tf.where(better, l2sq, best_l2),
                tf.where(expand(better), x_new, best_x))

      _, _, _, found, best_l2, best_x = tf.while_loop(
          lambda i, prev, stop, *_: (i < max_iterations) & tf.logical_not(stop), inner,
          (tf.constant(0), tf.constant(np.inf, tf.float32), tf.constant(False),
           tf.zeros([batch], tf.bool), best_l2, best_x))
      # Binary search on c per example: a success lowers the upper bound, a failure raises the
      # lower bound; bisect once an upper bound exists, else grow c tenfold.
      upper = tf.where(found, tf.minimum(upper, const), upper)
      lower = tf.where(found, lower, tf.maximum(lower, const))
      next_const = tf.where(upper < 1e9, (lower + upper) / 2.0,
                            tf.where(found, const, const * 10.0))
      return k + 1, next_const, lower, upper, best_l2, best_x, const

    ones = tf.ones([batch], tf.float32)
    _, _, _, _, best_l2, best_x, used = tf.while_loop(
        lambda k, *_: k < binary_search_steps, search_step,
        (tf.constant(0), ones * initial_const, ones * 0.0, ones * _NO_UPPER,
         ones * _NOT_FOUND, x, ones * initial_const))
    return best_x, best_l2, used

  return tf.function(attack, jit_compile=jit_compile, autograph=False)


def carlini_wagner_l2(model_fn: Callable[[Any], Any], x: np.ndarray, y: np.ndarray, *,
                      targeted: bool = False, batch_size: int = 128,
                      binary_search_steps: int = 5, max_iterations: int = 200,
                      learning_rate: float = 0.05, initial_const: float = 1.0,
                      confidence: float = 0.0, abort_early: bool = True, clip_min: float = 0.0,
                      clip_max: float = 1.0, progress: bool = False) -> CWResult:
  """Carlini-Wagner L2 adversarial examples for x, in batches of static size `batch_size`.

  Args:
    model_fn: maps a float32 batch (b, *input_shape) to logits (b, c), e.g. a keras.Model.
    x: (n, *input_shape) inputs in [clip_min, clip_max], e.g. (n, d) or (n, H, W, C).
    y: (n,) int labels: the true labels (untargeted) or the target labels (targeted).
    targeted: reach label y instead of leaving it.
    batch_size: examples per attack batch (capped at n); the last batch is padded to this
      size and the padding masked out.
    binary_search_steps: steps of the per-example binary search over c.
    max_iterations: Adam steps per binary-search step.
    learning_rate: Adam learning rate in tanh space.
    initial_const: c of the first binary-search step.
    confidence: logit margin kappa an adversarial must reach (0: any label change).
    abort_early: stop a binary-search step once the batch loss stops decreasing (checked every
      max_iterations // 10 steps, as in the paper).
    clip_min, clip_max: the input box.
    progress: tqdm bar over batches.

  Returns:
    CWResult; `success` is recomputed with model_fn at the returned x_adv (plain argmax, no
    confidence margin), and a candidate that the recomputation rejects is dropped (x_adv = x).

  Raises:
    UserError: mismatched x/y shapes, non-finite x, x outside [clip_min, clip_max], labels out of
      the logits' range, or a bad parameter (batch_size < 1, ...).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = np.asarray(x)
  y = np.asarray(y)
  _check(x, y, batch_size=batch_size, binary_search_steps=binary_search_steps,
         max_iterations=max_iterations, learning_rate=learning_rate,
         initial_const=initial_const, confidence=confidence, clip_min=clip_min,
         clip_max=clip_max)
  x = x.astype(np.float32)
  n, input_shape = len(x), tuple(x.shape[1:])
  if n == 0:
    return CWResult(x.copy(), np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, np.float32))

  try:
    probe = np.asarray(model_fn(tf.constant(x[:1])))
  except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise UserError(f"model_fn fails on inputs of shape {(1, *input_shape)}: {first}") from e
  if probe.ndim != 2 or probe.shape[0] != 1 or probe.shape[1] < 2:
    raise UserError(f"model_fn must map (b, *input_shape) to logits (b, c) with c >= 2; it gave "
                    f"{probe.shape} for a batch of 1")
  num_classes = probe.shape[1]
  if y.min() < 0 or y.max() >= num_classes:
    raise UserError(f"labels in y span [{y.min()}, {y.max()}], outside the model's "
                    f"{num_classes} classes [0, {num_classes - 1}]")
  y = y.astype(np.int64)

  batch_size = min(batch_size, n)  # no point padding beyond the data.
  settings = dict(targeted=targeted, binary_search_steps=binary_search_steps,
                  max_iterations=max_iterations, learning_rate=learning_rate,
                  initial_const=initial_const, confidence=confidence, abort_early=abort_early,
                  clip_min=float(clip_min), clip_max=float(clip_max))
  shape = (batch_size, *input_shape)
  attack = _build_attack(model_fn, shape, num_classes, jit_compile=True, **settings)
  jit = True

  x_adv, l2 = x.copy(), np.zeros(n, np.float32)
  success, const = np.zeros(n, bool), np.zeros(n, np.float32)
  starts = range(0, n, batch_size)
  if progress:
    from tfhull import console  # pylint: disable=import-outside-toplevel
    starts = console.progress(starts, desc=f"cw-l2 ({n} examples)", unit="batch")
  for start in starts:
    m = min(batch_size, n - start)
    xb = np.zeros(shape, np.float32) + np.float32(clip_min)
    xb[:m] = x[start:start + m]
    yb = np.zeros(batch_size, np.int64)
    yb[:m] = y[start:start + m]
    onehot = np.eye(num_classes, dtype=np.float32)[yb]
    valid = (np.arange(batch_size) < m).astype(np.float32)
    args = (tf.constant(xb), tf.constant(onehot), tf.constant(valid))
    try:
      best_x, best_l2, used = attack(*args)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
      if not jit:
        raise
      logging.warning("cw-l2: XLA could not compile the attack (%s); using a plain tf.function",
                      str(e).splitlines()[0])
      attack = _build_attack(model_fn, shape, num_classes, jit_compile=False, **settings)
      jit = False
      best_x, best_l2, used = attack(*args)

    found = best_l2.numpy()[:m] < _NOT_FOUND / 2
    cand = np.clip(best_x.numpy()[:m], clip_min, clip_max)
    clean = xb[:m]
    xc = xb.copy()
    xc[:m] = cand
    pred_adv = np.asarray(model_fn(tf.constant(xc))).argmax(1)[:m]
    pred_clean = np.asarray(model_fn(tf.constant(xb))).argmax(1)[:m]
    target = yb[:m]
    hit_adv = pred_adv == target if targeted else pred_adv != target
    hit_clean = pred_clean == target if targeted else pred_clean != target
    keep = found & hit_adv
    sel = keep.reshape((m,) + (1,) * len(input_shape))
    xa = np.where(sel, cand, clean)
    diff = (xa.astype(np.float64) - clean).reshape(m, -1)
    x_adv[start:start + m] = xa
    l2[start:start + m] = np.where(keep, np.sqrt(np.sum(diff * diff, 1)), 0.0)
    success[start:start + m] = np.where(keep, True, hit_clean)
    const[start:start + m] = used.numpy()[:m]
  return CWResult(x_adv=x_adv, l2=l2, success=success, const=const)

