"""cleverhans 4.0.0 TF2 attacks, batched on static shapes and compiled, under any strategy.

  x_adv = attack_batched("pgd", model_fn, x, y, eps=0.1, norm=np.inf, steps=20)

FGM and MIM are cleverhans' own functions. PGD (and BIM, PGD without random start) is cleverhans' algorithm assembled from its
pieces (`fast_gradient_method`, `clip_eta`; the random start drawn statelessly so XLA honours the seed) so that `eps` may differ per
example (cleverhans' `projected_gradient_descent` asserts on a Python scalar eps); with a scalar
eps it computes what cleverhans' function computes (tested). SPSA is cleverhans'
`projected_optimization` with a Keras 3 compatible SPSA-Adam (cleverhans' `SPSAAdam` passes the
removed `lr=` argument to the Keras 3 optimizer and fails); cleverhans' SPSA takes one example at
a time, so it runs per example, compiled once.
"""

import dataclasses
import weakref
from typing import Callable, Optional

from absl import logging

import numpy as np

from tfhull.errors import UserError

# Attack name -> the norms it supports.
NORMS = {"fgm": ("inf", "2"), "pgd": ("inf", "2"), "bim": ("inf", "2"), "mim": ("inf", "2"),
         "spsa": ("inf",), "cw_l2": ("2",)}


def norm_order(norm: str) -> float:
  """'inf' -> np.inf, '2' -> 2.0 (cleverhans' convention)."""
  if norm not in ("inf", "2"):
    raise UserError(f"unknown norm {norm!r}; use inf or 2")
  return np.inf if norm == "inf" else 2.0


@dataclasses.dataclass(frozen=True)
class IterativeConfig:
  """Settings of the iterative attacks (PGD, BIM, MIM, SPSA)."""
  steps: int = 20             # iterations.
  step_size: float = 0.25     # per-step size as a fraction of eps (eps_iter = step_size x eps).
  rand_init: bool = True      # PGD: random start in the eps ball (Madry et al.); BIM: never.
  seed: int = 0               # PGD's random start: stateless draws from (seed, batch position).
  decay: float = 1.0          # MIM momentum decay.
  spsa_samples: int = 128     # SPSA: perturbations per gradient estimate.
  spsa_delta: float = 0.01
  spsa_learning_rate: float = 0.01


def pgd(model_fn, x, y, eps, *, norm: float, steps: int, eps_iter, rand_init: bool,
        targeted: bool = False, clip_min: float = 0.0, clip_max: float = 1.0, seed=(0, 0)):
  """Projected gradient descent (Madry et al. 2017) with per-example eps.

  Args:
    model_fn: (b, ...) -> (b, c) logits.
    x: (b, ...) float32 tensor; y: (b,) int labels (targets if `targeted`).
    eps, eps_iter: scalars or (b,) tensors (radius and step, same units as x).
    seed: (2,) int seed of the random start (stateless: XLA honours it, and the same seed gives
      the same start on every device).
  Returns:
    (b, ...) adversarial examples with ||x_adv - x||_norm <= eps, in [clip_min, clip_max].
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.utils import clip_eta  # pylint: disable=import-outside-toplevel
  eps, eps_iter = per_example(eps, x), per_example(eps_iter, x)
  eta = random_start(x, norm, eps, seed) if rand_init else tf.zeros_like(x)
  adv = tf.clip_by_value(x + clip_eta(eta, norm, eps), clip_min, clip_max)
  for _ in range(steps):
    adv = fast_gradient_method(model_fn, adv, eps_iter, norm, clip_min=clip_min,
                               clip_max=clip_max, y=y, targeted=targeted)
    adv = tf.clip_by_value(x + clip_eta(adv - x, norm, eps), clip_min, clip_max)
  return adv


def random_start(x, norm: float, eps, seed):
  """Uniform draws from the eps ball around 0, shaped like x (b, ...): cleverhans'
  `random_lp_vector` with stateless ops (its stateful ones ignore seeds under XLA).

  L-inf: uniform in [-eps, eps]^d; L2: a uniform direction scaled by eps * u^(1/d) (Calafiore et
  al. 1998), u uniform in [0, 1]. eps: scalar or (b, 1, ..., 1).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
  s_dir, s_rad = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  if norm == np.inf:
    return eps * tf.random.stateless_uniform(tf.shape(x), s_dir, -1.0, 1.0, dtype=x.dtype)
  b, dim = tf.shape(x)[0], tf.reduce_prod(tf.shape(x)[1:])
  v = tf.random.stateless_normal(tf.stack([b, dim]), s_dir, dtype=x.dtype)
  v = v / tf.norm(v, axis=-1, keepdims=True)
  u = tf.random.stateless_uniform(tf.stack([b, 1]), s_rad, dtype=x.dtype)
  return eps * tf.reshape(v * tf.pow(u, 1.0 / tf.cast(dim, x.dtype)), tf.shape(x))


def per_example(value, x):
  """A scalar stays a scalar; a (b,) tensor becomes (b, 1, ..., 1) to broadcast against x."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  value = tf.cast(tf.convert_to_tensor(value), x.dtype)
  if value.shape.rank:
    value = tf.reshape(value, [-1] + [1] * (len(x.shape) - 1))
  return value


def spsa_optimizer(learning_rate: float, delta: float, samples: int):
  """cleverhans' SPSAAdam, constructed the Keras 3 way (its own __init__ passes `lr=`)."""
  import keras  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks import spsa as spsa_lib  # pylint: disable=import-outside-toplevel

  class SPSAAdam(spsa_lib.SPSAAdam):

    def __init__(self):  # pylint: disable=super-init-not-called
      keras.optimizers.Adam.__init__(self, learning_rate=learning_rate)  # pylint: disable=non-parent-init-called
      self.lr = learning_rate
      self._delta = delta
      self._num_samples = samples // 2  # Mirrored +/- delta.
      self._num_iters = 1
      self._compare_to_analytic_grad = False

  return SPSAAdam()


def spsa(model_fn, x, y, eps, *, steps: int, optimizer, targeted: bool = False,
         clip_min: float = 0.0, clip_max: float = 1.0):
  """SPSA (Uesato et al. 2018), L-inf, gradient-free, on a batch of ONE example (b = 1).

  `optimizer` comes from `spsa_optimizer` (made once, outside any tf.function; it holds no state
  between calls: cleverhans threads the Adam moments through its loop).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks import spsa as spsa_lib  # pylint: disable=import-outside-toplevel

  def loss_fn(xs, label):
    logits = model_fn(xs)
    sign = 1.0 if targeted else -1.0
    return sign * spsa_lib.margin_logit_loss(logits, label, nb_classes=logits.shape[-1])

  return spsa_lib.projected_optimization(loss_fn, x, y, tf.cast(eps, x.dtype), steps, optimizer,
                                         clip_min, clip_max, None)


def make_step(name: str, model_fn, norm: str, cfg: IterativeConfig, *,
              targeted: bool = False) -> Callable:
  """The per-batch attack (x, y, eps) -> x_adv of `name`, ready for `tf.function`."""
  from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks.momentum_iterative_method import momentum_iterative_method  # pylint: disable=import-outside-toplevel
  order = norm_order(norm)
  common = dict(clip_min=0.0, clip_max=1.0, targeted=targeted)
  if norm not in NORMS.get(name, ()):
    raise UserError(f"attack {name} does not support norm {norm}; it supports "
                    f"{', '.join(NORMS.get(name, ()))}")
  if name == "fgm":
    return lambda x, y, eps: fast_gradient_method(model_fn, x, per_example(eps, x), order, y=y,
                                                  **common)
  if name in ("pgd", "bim"):  # BIM (Kurakin et al.) is PGD without the random start.
    if not (cfg.rand_init and name == "pgd"):
      return lambda x, y, eps: pgd(model_fn, x, y, eps, norm=order, steps=cfg.steps,
                                   eps_iter=eps * cfg.step_size, rand_init=False, **common)

    def random_pgd(x, y, eps, index):  # index: (b,) positions of the batch's examples.
      return pgd(model_fn, x, y, eps, norm=order, steps=cfg.steps, eps_iter=eps * cfg.step_size,
                 rand_init=True, seed=[cfg.seed, index[0]], **common)
    random_pgd.takes_index = True  # run_batched passes each example's position.
    return random_pgd
  if name == "mim":
    return lambda x, y, eps: momentum_iterative_method(
        model_fn, x, per_example(eps, x), per_example(eps * cfg.step_size, x), cfg.steps, order,
        y=y, decay_factor=cfg.decay, sanity_checks=False, **common)
  if name == "spsa":
    opt = spsa_optimizer(cfg.spsa_learning_rate, cfg.spsa_delta, cfg.spsa_samples)
    return lambda x, y, eps: spsa(model_fn, x, y, per_example(eps, x), steps=cfg.steps,
                                  optimizer=opt, **common)
  raise UserError(f"unknown attack {name!r}; use one of {', '.join(NORMS)}")


_COMPILED = weakref.WeakKeyDictionary()  # step -> {(strategy id, jit): tf.function}.


def _compiled(step: Callable, strategy, jit_compile: bool):
  """One `tf.function` per (step, strategy, jit_compile), traced once and reused across calls
  (the minimal-eps bisection calls the same step a dozen times)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cache = _COMPILED.setdefault(step, {})
  key = (id(strategy), jit_compile)
  if key not in cache:
    fn = tf.function(step, jit_compile=jit_compile)
    cache[key] = tf.function(lambda batch: strategy.run(fn, args=batch))
  return cache[key]


def run_batched(step: Callable, x: np.ndarray, y: np.ndarray, eps, *, batch_size: int,
                strategy=None, jit_compile: bool = True, progress: Optional[str] = None,
                pad_eps: Optional[float] = None):
  """Applies a per-batch attack to all of x on static, padded batches under `strategy`.

  Args:
    step: (x_batch, y_batch, eps_batch) -> x_adv_batch, traced once by `tf.function`; a step
      with `takes_index` also gets the batch's (b,) int32 positions in x (a seed for its draws).
    x: (n, ...) float32 in [0, 1]; y: (n,) int labels; eps: scalar or (n,) per-example radii.
    batch_size: examples per replica per step (the global batch is batch_size x replicas).
    jit_compile: compile the step with XLA (about 1.4x faster on CPU for PGD-20; required on
      TPUs); a step XLA cannot compile falls back to a plain tf.function with a warning.
    pad_eps: the eps of the padding rows (None: the first example's).
  Returns:
    (n, ...) float32 adversarial examples; a step returning a tuple gives a tuple of (n, ...)
    arrays.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  strategy = strategy or tf.distribute.get_strategy()
  n = len(x)
  global_batch = max(1, min(batch_size * strategy.num_replicas_in_sync,
                            -(-n // strategy.num_replicas_in_sync)
                            * strategy.num_replicas_in_sync))
  pad = -n % global_batch
  eps = np.broadcast_to(np.asarray(eps, np.float32), (n,))
  xs = np.concatenate([x, x[:1].repeat(pad, 0)]).astype(np.float32)  # Pad with a real example.
  ys = np.concatenate([y, y[:1].repeat(pad, 0)]).astype(np.int32)
  es = np.concatenate([eps, (eps[:1] if pad_eps is None else np.float32([pad_eps])).repeat(pad)])
  from tfhull import distribute  # pylint: disable=import-outside-toplevel
  data = distribute.distribute_for_order(
      tf.data.Dataset.from_tensor_slices(
          (xs, ys, es, np.arange(len(xs), dtype=np.int32))
          if getattr(step, "takes_index", False) else (xs, ys, es)
      ).batch(global_batch, drop_remainder=True))
  distributed = _compiled(step, strategy, jit_compile)
  out = []
  batches = strategy.experimental_distribute_dataset(data)
  if progress:
    from tfhull import console  # pylint: disable=import-outside-toplevel
    batches = console.progress(batches, total=len(xs) // global_batch, desc=progress,
                               unit="batch", leave=False)
  for batch in batches:
    try:
      result = distributed(batch)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
      if not jit_compile or out:
        raise
      logging.warning("attack step does not compile with XLA (%s); running it without",
                      str(e).splitlines()[0][:200])
      jit_compile = False
      distributed = _compiled(step, strategy, jit_compile)
      result = distributed(batch)
    # Every host, every topology.
    out.append(tuple(distribute.in_input_order(strategy, r) for r in result)
               if isinstance(result, tuple) else distribute.in_input_order(strategy, result))
  if out and isinstance(out[0], tuple):
    return tuple(np.concatenate(parts)[:n] for parts in zip(*out))
  return np.concatenate(out)[:n]
