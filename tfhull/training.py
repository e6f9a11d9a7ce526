"""One readable training loop: Keras `fit` under a tf.distribute strategy, static shapes.

  config = TrainConfig(optimizer="adam", learning_rate=1e-3, epochs=200, until_interpolation=True)
  result = train(model_spec="mlp:width=512,depth=2", dataset=ds, config=config)

The input pipeline is `tf.data`: each epoch is a permutation drawn from (seed, epoch) alone,
with stateless augmentation seeded from (seed, epoch) too, and static batches of the global batch
(per-replica batch x replicas), as TPUs need. `until_interpolation` stops training once the
model classifies every (unaugmented) training example correctly, the regime of the paper.

With a `work_dir`, every finished epoch is checkpointed (weights, optimizer state, history, the
stop flag); a run killed at any point and resumed with the same work_dir ends with the same
weights, bit for bit, as an uninterrupted run: the data order and augmentation of an epoch depend
on (seed, epoch) only. A corrupt checkpoint is discarded with a warning (training restarts).
A non-finite loss or weight stops training with a UserError.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "3"

import contextlib
import dataclasses
import json
import math
import os
import time
from typing import Any, Optional, Sequence

from absl import logging
import numpy as np

from tfhull import models
from tfhull.data import Dataset
from tfhull.errors import UserError

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")
AUGMENTATIONS = ("none", "crop", "flip_crop")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that decides the trained weights (besides the data and the model spec)."""
  optimizer: str = "adam"          # sgd (with momentum) | adam; weight decay is decoupled.
  learning_rate: float = 1e-3
  momentum: float = 0.9            # sgd only.
  schedule: str = "constant"       # constant | cosine (to 0) | step (x0.1 at 50% and 75%).
  weight_decay: float = 0.0        # decoupled, per step: w -= lr * weight_decay * w.
  batch_size: int = 128            # per replica; global batch = batch_size x replicas.
  epochs: int = 100                # the maximum when until_interpolation.
  augment: str = "none"            # none | crop (pad H/8, random crop) | flip_crop.
  label_smoothing: float = 0.0
  until_interpolation: bool = False
  mixed_precision: bool = False    # mixed_bfloat16 compute, float32 variables.
  init_scale: float = 1.0          # multiplies every initial kernel (the initialization regime).
  seed: int = 0

  def check(self) -> None:
    """Raises UserError on values no training run can use."""
    if self.optimizer not in OPTIMIZERS:
      raise UserError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    if self.schedule not in SCHEDULES:
      raise UserError(f"unknown lr schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
    if self.augment not in AUGMENTATIONS:
      raise UserError(f"unknown augmentation {self.augment!r}; use one of "
                      f"{', '.join(AUGMENTATIONS)}")
    if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
      raise UserError(f"--learning_rate={self.learning_rate} must be a positive number")
    if not 0 <= self.label_smoothing < 1:
      raise UserError(f"--label_smoothing={self.label_smoothing} must be in [0, 1)")
    if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0) or not (
        0 <= self.momentum < 1):
      raise UserError(f"--weight_decay={self.weight_decay} must be a finite number >= 0 and "
                      f"--momentum={self.momentum} in [0, 1)")
    if self.batch_size < 1 or self.epochs < 1:
      raise UserError("--batch_size and --epochs must be >= 1")
    if not (self.init_scale > 0 and math.isfinite(self.init_scale)):
      raise UserError(f"--init_scale={self.init_scale} must be a positive number")


@dataclasses.dataclass(frozen=True)
class FlagNames:
  """The caller's command-line flags, named in the warning when `until_interpolation` runs out of
  epochs (defaults: the train component's)."""
  study: str = "--until_interpolation"   # what asked for interpolation, the warning's first word.
  epochs: str = "--epochs"
  learning_rate: str = "--learning_rate"
  width: str = "the width in --model"


@dataclasses.dataclass
class TrainResult:
  """A trained model and what the run measured."""
  model: Any                 # keras.Model with layers `features` and `logits`.
  history: dict              # metric name -> per-epoch list (loss, accuracy, lr, ...).
  metrics: dict              # final train/test accuracy and loss, params, ratios, timing.


def global_batch_size(config: TrainConfig, strategy) -> int:
  return config.batch_size * strategy.num_replicas_in_sync


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
  """The Keras optimizer with its learning-rate schedule (steps counted in optimizer updates)."""
  import keras  # pylint: disable=import-outside-toplevel
  total = max(1, config.epochs * steps_per_epoch)
  lr = config.learning_rate
  if config.schedule == "cosine":
    lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
  elif config.schedule == "step":
    lr = keras.optimizers.schedules.PiecewiseConstantDecay(
        [total // 2, (3 * total) // 4], [lr, lr * 0.1, lr * 0.01])
  decay = config.weight_decay or None
  if config.optimizer == "sgd":
    return keras.optimizers.SGD(lr, momentum=config.momentum, weight_decay=decay)
  return keras.optimizers.Adam(lr, weight_decay=decay)


def input_pipeline(x: np.ndarray, y: np.ndarray, num_classes: int, *, global_batch: int,
                   augment: str, seed: int, start_epoch: int = 0):
  """Infinite tf.data pipeline of (images, one-hot labels) batches of static shape.

  Epoch e is `len(x) // global_batch` batches of a permutation drawn from (seed, e) (the last
  `len(x) % global_batch` examples of that permutation are left out), each example augmented
  with stateless ops whose seeds also come from (seed, e): the stream from `start_epoch` on is
  the same as the one an uninterrupted run sees there. Images that are uint8 codes divided by 255
  (or 16, digits) are held as uint8 and divided per example, giving the same float32 values.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  n = len(x)
  per_epoch = (n // global_batch) * global_batch
  stored = quantized(x)  # uint8 held in the pipeline (4x less memory) where that is exact.
  images = tf.constant(stored[0] if stored else x.astype(np.float32))
  labels = tf.constant(y.astype(np.int32))
  seed = int(seed)
  pad = max(1, x.shape[1] // 8) if x.ndim == 4 else 0

  def epoch(e):
    order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([seed, 2 * e])))
    pair_seeds = tf.random.stateless_uniform([per_epoch, 2], seed=tf.stack([seed, 2 * e + 1]),
                                             minval=None, maxval=None, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices((order[:per_epoch], pair_seeds))

  def prepare(index, pair_seed):
    image, label = tf.gather(images, index), tf.gather(labels, index)
    if stored:  # The same float32 division the data step did, so the same values.
      image = tf.cast(image, tf.float32) / tf.constant(stored[1], tf.float32)
    if augment != "none":
      s1, s2 = pair_seed, tf.reverse(pair_seed, [0])
      if augment == "flip_crop":
        image = tf.image.stateless_random_flip_left_right(image, seed=s1)
      padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
      image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=s2)
    return image, tf.one_hot(label, num_classes)

  ds = tf.data.Dataset.range(int(start_epoch), 2**62).flat_map(epoch)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def quantized(x: np.ndarray, chunk: int = 4096):
  """(uint8 codes, scale) when float32 `x` is exactly `float32(codes) / scale` for a scale of 255
  or 16 (uint8 sources and digits), else None."""
  if x.dtype != np.float32 or not x.size:
    return None
  for scale in (255, 16):
    s = np.float32(scale)
    codes = np.empty(x.shape, np.uint8)
    for i in range(0, len(x), chunk):
      part = np.rint(x[i:i + chunk] * s)
      if part.min() < 0 or part.max() > 255 or not np.array_equal(
          part.astype(np.uint8).astype(np.float32) / s, x[i:i + chunk]):
        break
      codes[i:i + chunk] = part
    else:
      return codes, scale
  return None


def evaluate(model, x: np.ndarray, y: np.ndarray, *, batch_size: int, strategy=None,
             label_smoothing: float = 0.0) -> dict:
  """Accuracy and mean cross-entropy (on logits, label smoothing as in training) of model on x."""
  logits = models.predict(model, x, batch_size=batch_size, strategy=strategy).astype(np.float64)
  logp = logits - logits.max(1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(1, keepdims=True))
  c = logits.shape[1]
  target = np.full(logits.shape, label_smoothing / c)
  target[np.arange(len(y)), y] += 1.0 - label_smoothing
  return {"accuracy": float(np.mean(logits.argmax(1) == y)),
          "loss": float(-(target * logp).sum(1).mean())}


def _monitor(dataset: Dataset, config: TrainConfig, strategy):
  """Callback run at each epoch end, before the History, CSV, TensorBoard and progress loggers:
  adds `test_accuracy`, `test_loss` and `learning_rate` to the epoch logs (exact, unaugmented,
  padded static batches) and, with `until_interpolation`, stops once every training example is
  classified correctly (checked exactly, since the running accuracy lags the weights)."""
  import keras  # pylint: disable=import-outside-toplevel
  kw = dict(batch_size=config.batch_size, strategy=strategy,
            label_smoothing=config.label_smoothing)

  class Monitor(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.interpolation_epoch = None

    def on_epoch_end(self, epoch, logs=None):
      logs = logs if logs is not None else {}
      test = evaluate(self.model, dataset.x_test, dataset.y_test, **kw)
      logs["test_accuracy"], logs["test_loss"] = test["accuracy"], test["loss"]
      logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
      if not config.until_interpolation or logs.get("accuracy", 0.0) < 0.99:
        return
      if evaluate(self.model, dataset.x_train, dataset.y_train, **kw)["accuracy"] == 1.0:
        self.interpolation_epoch = epoch + 1
        logging.info("interpolation reached after %d epochs: stopping", epoch + 1)
        self.model.stop_training = True

  return Monitor()


def _tensorboard(log_dir: str):
  """Keras's TensorBoard callback with the clean test metrics (`test_*` in the epoch logs) in
  the validation run, renamed to the training metrics' tags (`epoch_accuracy`, ...)."""
  import keras  # pylint: disable=import-outside-toplevel

  class TensorBoard(keras.callbacks.TensorBoard):

    def on_epoch_end(self, epoch, logs=None):
      logs = {(f"val_{k[len('test_'):]}" if k.startswith("test_") else k): v
              for k, v in (logs or {}).items()}
      super().on_epoch_end(epoch, logs)

  return TensorBoard(log_dir, update_freq="epoch")


CHECKPOINT = "checkpoint.npz"


def _training_variables(model) -> list:
  """What an epoch boundary's state is made of: the model's weights, the optimizer's variables
  (iterations, moments) and any seed-generator state (dropout)."""
  seen, out = set(), []
  gens = [g.state for layer in model._flatten_layers()  # pylint: disable=protected-access
          for g in getattr(layer, "_seed_generators", [])]
  for v in [*model.weights, *model.optimizer.variables, *gens]:
    if id(v) not in seen:
      seen.add(id(v))
      out.append(v)
  return out


def _checkpoint_callback(path: Optional[str], run_key: str, history: list, monitor):
  """Epoch-end callback: stops on a non-finite loss or weight (UserError), records the epoch's
  logs in `history` and, with a `path`, writes the checkpoint (atomically where rename is)."""
  import keras  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel

  class Checkpoint(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      logs = dict(logs or {})
      vars_ = _training_variables(self.model)
      values = [keras.ops.convert_to_numpy(v) for v in vars_]
      loss = float(logs.get("loss", 0.0))
      bad = [v.path for v, a in zip(vars_, values)
             if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a))]
      if not math.isfinite(loss) or bad:
        what = f"the loss is {loss}" if not math.isfinite(loss) else f"{bad[0]} is not finite"
        raise UserError(f"training diverged at epoch {epoch + 1}: {what}; lower "
                        "--learning_rate, --weight_decay or --init_scale")
      history.append({k: float(v) for k, v in logs.items()})
      if not path:
        return
      state = {"run": run_key, "epoch": epoch + 1, "history": history,
               "stopped": bool(self.model.stop_training),
               "interpolation_epoch": monitor.interpolation_epoch,
               # In order; names are not stable (Keras uniquifies them per process).
               "variables": [[list(a.shape), str(a.dtype)] for a in values]}
      arrays = {f"v{i}": a for i, a in enumerate(values)}
      arrays["state"] = np.frombuffer(json.dumps(state).encode(), np.uint8)
      if io.exists(path + ".partial") or io.is_symlink(path + ".partial"):
        io.remove(path + ".partial")  # Never write through a link a killed run left (or not).
      io.save_npz(path + ".partial", arrays)
      io.gfile.rename(path + ".partial", path, overwrite=True)

  return Checkpoint()


def _restore(path: str, run_key: str, model) -> Optional[dict]:
  """Loads the checkpoint at `path` into `model` (and its built optimizer); returns its state, or
  None when there is none. A corrupt or foreign checkpoint is discarded with a warning (the caller
  then trains from the start); nothing is assigned unless every variable checks out."""
  import keras  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  if not (io.exists(path) or io.is_symlink(path)):
    return None
  try:
    arrays = io.load_npz(io.confined_path(os.path.dirname(path), CHECKPOINT))  # lstat first.
    state = json.loads(arrays.pop("state").tobytes().decode())
    vars_ = _training_variables(model)
    expected = [[list(v.shape), str(keras.ops.convert_to_numpy(v).dtype)] for v in vars_]
    if state.get("run") != run_key:
      raise ValueError("it belongs to another model, config or dataset")
    if state.get("variables") != expected or len(arrays) != len(vars_):
      raise ValueError("its variables do not match the model's")
    values = [arrays[f"v{i}"] for i in range(len(vars_))]
    if any(np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)) for a in values):
      raise ValueError("it holds non-finite values")
    if not (isinstance(state.get("epoch"), int) and isinstance(state.get("history"), list)
            and len(state["history"]) == state["epoch"]):
      raise ValueError("its epoch count and history disagree")
  except Exception as e:  # Unreadable in any way: corrupt.  pylint: disable=broad-except
    logging.warning("discarding the checkpoint %s: %s; training restarts from epoch 1", path, e)
    io.remove(path)
    return None
  for v, a in zip(vars_, values):
    v.assign(a)
  logging.info("resuming from %s after epoch %d", path, state["epoch"])
  return state


def train(model_spec: str, dataset: Dataset, config: TrainConfig, *, strategy=None,
          work_dir: Optional[str] = None, tensorboard_dir: Optional[str] = None,
          callbacks: Sequence[Any] = (), verbose: int = 2,
          flag_names: FlagNames = FlagNames(), steps_per_execution: int = 1) -> TrainResult:
  """Builds `model_spec` for `dataset` and trains it with `config` under `strategy`.

  Args:
    model_spec: a `tfhull.models` spec, e.g. "mlp:width=512,depth=2".
    dataset: training and test split; the training labels are the (possibly noisy) y_train.
    config: optimizer, schedule, epochs, ...
    strategy: tf.distribute strategy (None: the default strategy).
    work_dir: directory for the per-epoch checkpoint (`checkpoint.npz`); an interrupted run given
      the same work_dir resumes after its last finished epoch, to the same final weights. Used by
      one run at a time (`artifacts.run` holds the artifact's lock); a link is refused.
    tensorboard_dir: where TensorBoard event files go (None: none): the training metrics in
      its `train/` run, the clean test set's in `validation/` under the same tags
      (`epoch_loss`, `epoch_accuracy`), so the two curves overlay as Keras's would.
    callbacks: more Keras callbacks, run after the built-in ones.
    verbose: Keras progress output (1 bar, 2 one line per epoch, 0 silent).
    flag_names: the caller's flags (epochs, learning rate, width), named in the warning when
      `until_interpolation` runs out of epochs.
    steps_per_execution: training steps per compiled call (Keras `compile`; fewer host round
      trips on TPUs). It does not change the weights: the largest divisor of the steps per epoch
      not above it is used, since Keras would otherwise run past an epoch's end into the next.

  Raises:
    UserError: a bad config, a spec that does not fit the data, a batch larger than the data,
      or a non-finite loss or weight (divergence).
  """
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  config.check()
  models.parse_spec(model_spec)
  strategy = strategy or tf.distribute.get_strategy()
  batch = global_batch_size(config, strategy)
  n = len(dataset.x_train)
  if batch > n:
    raise UserError(f"global batch {batch} (batch_size {config.batch_size} x "
                    f"{strategy.num_replicas_in_sync} replicas) exceeds the {n} training examples; "
                    "lower --batch_size")
  if work_dir and io.is_symlink(work_dir):
    raise UserError(f"{work_dir} is a symbolic link; tfhull does not write through links: remove "
                    "it (its target is left alone) and rerun")
  steps = n // batch
  if steps_per_execution < 1:
    raise UserError(f"--steps_per_execution={steps_per_execution} must be >= 1")
  per_call = execution_steps(steps, steps_per_execution)
  if per_call != steps_per_execution:
    logging.info("steps_per_execution %d -> %d, a divisor of the %d steps per epoch",
                 steps_per_execution, per_call, steps)
  keras.utils.set_random_seed(config.seed)

  previous_policy = keras.config.dtype_policy()
  if config.mixed_precision:
    keras.config.set_dtype_policy("mixed_bfloat16")
  try:
    with strategy.scope():
      model = models.build(model_spec, dataset.input_shape, dataset.num_classes, seed=config.seed)
      if config.init_scale != 1.0:
        for w in model.trainable_weights:
          if "kernel" in w.path:
            w.assign(w * config.init_scale)
      model.compile(
          optimizer=make_optimizer(config, steps),
          loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=config.label_smoothing),
          metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
          steps_per_execution=per_call)
      model.optimizer.build(model.trainable_variables)  # Its state is part of a checkpoint.
  finally:
    keras.config.set_dtype_policy(previous_policy)

  report = models.parameter_report(model, n, dataset.num_classes)
  logging.info("%s: %s parameters, %.1f per training example, %.2f per constraint (n x c); "
               "global batch %d over %d replica(s), %d steps/epoch", model.name,
               f"{report.params:,}", report.ratio_to_samples, report.ratio_to_constraints,
               batch, strategy.num_replicas_in_sync, steps)

  # What decides the weights, so a checkpoint of another run is never resumed from.
  run_key = json.dumps({"spec": model_spec, "config": dataclasses.asdict(config), "n": n,
                        "batch": batch, "data": _digest(dataset.x_train, dataset.y_train)},
                       sort_keys=True)
  ckpt_path = io.join(work_dir, CHECKPOINT) if work_dir else None
  state = None
  if work_dir:
    io.gfile.makedirs(work_dir)
    with strategy.scope():
      state = _restore(ckpt_path, run_key, model)
  start_epoch = state["epoch"] if state else 0
  history_rows = list(state["history"]) if state else []
  monitor = _monitor(dataset, config, strategy)
  monitor.interpolation_epoch = state.get("interpolation_epoch") if state else None
  callbacks = [monitor, *callbacks, _checkpoint_callback(ckpt_path, run_key, history_rows, monitor)]
  if tensorboard_dir:
    callbacks.append(_tensorboard(tensorboard_dir))
  if verbose:  # Keras prints an epoch line (or bar): output, so no console heartbeat meanwhile.
    from tfhull import console  # pylint: disable=import-outside-toplevel
    callbacks.append(keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda *_: console.touch(), on_epoch_end=lambda *_: console.touch()))

  start = time.time()
  if start_epoch < config.epochs and not (state and state["stopped"]):
    data = input_pipeline(dataset.x_train, dataset.y_train, dataset.num_classes,
                          global_batch=batch, augment=config.augment, seed=config.seed,
                          start_epoch=start_epoch)
    with _multi_worker_fit(model, data, strategy):
      model.fit(data, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
                callbacks=callbacks, shuffle=False, verbose=verbose)
  wall = time.time() - start
  history: dict = {}
  for row in history_rows:
    for k, v in row.items():
      history.setdefault(k, []).append(v)

  eval_kw = dict(batch_size=config.batch_size, strategy=strategy,
                 label_smoothing=config.label_smoothing)
  train_m = evaluate(model, dataset.x_train, dataset.y_train, **eval_kw)
  clean_m = evaluate(model, dataset.x_train, dataset.clean_labels, **eval_kw)
  test_m = evaluate(model, dataset.x_test, dataset.y_test, **eval_kw)
  if not all(math.isfinite(m["loss"]) for m in (train_m, test_m)):
    raise UserError("training produced a model with non-finite outputs; lower --learning_rate, "
                    "--weight_decay or --init_scale")
  epochs_run = len(history.get("loss", ()))
  metrics = {
      "model": model.name,
      "params": report.params,
      "params_per_example": report.ratio_to_samples,
      "params_per_constraint": report.ratio_to_constraints,
      "train_accuracy": train_m["accuracy"], "train_loss": train_m["loss"],
      "train_accuracy_clean_labels": clean_m["accuracy"],
      "test_accuracy": test_m["accuracy"], "test_loss": test_m["loss"],
      "interpolated": train_m["accuracy"] == 1.0,
      "epochs_run": epochs_run,
      "interpolation_epoch": monitor.interpolation_epoch,
      "resumed_from_epoch": start_epoch,
      "global_batch_size": batch, "replicas": strategy.num_replicas_in_sync,
      "steps_per_epoch": steps, "steps_per_execution": per_call,
      "train_seconds": round(wall, 3),
  }
  logging.info("trained %s: train accuracy %.4f, test accuracy %.4f after %d epochs (%.1fs)",
               model.name, metrics["train_accuracy"], metrics["test_accuracy"], epochs_run, wall)
  if config.until_interpolation and not metrics["interpolated"]:
    logging.warning("%s: training accuracy %.4f < 1 after %d epochs; raise %s, %s or %s",
                    flag_names.study, metrics["train_accuracy"], epochs_run, flag_names.epochs,
                    flag_names.learning_rate, flag_names.width)
  return TrainResult(model=model, history=history, metrics=metrics)


@contextlib.contextmanager
def _multi_worker_fit(model, data, strategy):
  """Works around two Keras 3 bugs that stop `fit` under a multi-worker MultiWorkerMirrored-
  Strategy before its first step (keras-team/keras#20585; TF 2.21, Keras 3.13); other
  strategies: no change.

  1. The symbolic build reduces the first distributed (images, labels) batch with
     `strategy.reduce`, which fails on a tuple ("Attempt to convert a value (PerReplica ...)"):
     the compiled loss and metrics are built here from one host batch (only shapes matter).
  2. The train step averages its scalar logs with `strategy.reduce("MEAN", v, axis=0)`, which
     fails on scalars ("Invalid reduction dimension 0"): while `fit` traces, scalars are averaged
     over replicas with axis=None (what the one-host path computes).
  """
  from tfhull import distribute  # pylint: disable=import-outside-toplevel
  if not distribute._multi_worker(strategy):  # pylint: disable=protected-access
    yield
    return
  from keras.src.backend.tensorflow import trainer  # pylint: disable=import-outside-toplevel
  with strategy.scope():
    model._symbolic_build(data_batch=next(iter(data)))  # pylint: disable=protected-access
  original = trainer.reduce_per_replica

  def reduce_per_replica(values, strategy, reduction):
    if reduction in ("auto", "mean"):
      def mean(v):
        first = v.values[0] if isinstance(v, trainer.tf.distribute.DistributedValues) else v
        if getattr(first, "shape", None) is not None and first.shape.rank == 0:
          return strategy.reduce("MEAN", v, axis=None)
        return original(v, strategy, reduction)
      return trainer.tree.map_structure(mean, values)
    return original(values, strategy, reduction)

  model._maybe_symbolic_build = lambda *args, **kwargs: None  # pylint: disable=protected-access
  trainer.reduce_per_replica = reduce_per_replica
  try:
    yield
  finally:
    trainer.reduce_per_replica = original
    del model._maybe_symbolic_build  # pylint: disable=protected-access


def execution_steps(steps_per_epoch: int, wanted: int) -> int:
  """The largest divisor of `steps_per_epoch` that is at most `wanted` (>= 1)."""
  return max(d for d in range(1, min(wanted, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def _digest(*arrays: np.ndarray) -> str:
  import hashlib  # pylint: disable=import-outside-toplevel
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
  return h.hexdigest()[:16]
