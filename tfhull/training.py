"""One readable training loop: Keras `fit` under a tf.distribute strategy, static shapes.

  config = TrainConfig(optimizer="adam", learning_rate=1e-3, epochs=200, until_interpolation=True)
  result = train(model_spec="mlp:width=512,depth=2", dataset=ds, config=config)

The input pipeline is `tf.data` with a seeded shuffle, stateless augmentation (seeded per
example) and `drop_remainder=True`, so every step has the static global batch
(per-replica batch x replicas), as TPUs need. `until_interpolation` stops training once the
model classifies every (unaugmented) training example correctly, the regime of the paper.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "1"

import dataclasses
import math
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
    if self.weight_decay < 0 or not 0 <= self.momentum < 1:
      raise UserError("--weight_decay must be >= 0 and --momentum in [0, 1)")
    if self.batch_size < 1 or self.epochs < 1:
      raise UserError("--batch_size and --epochs must be >= 1")
    if not (self.init_scale > 0 and math.isfinite(self.init_scale)):
      raise UserError(f"--init_scale={self.init_scale} must be a positive number")


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
                   augment: str, seed: int):
  """Infinite tf.data pipeline of (images, one-hot labels) batches of static shape.

  Shuffled (seeded, reshuffled each epoch), augmented per example with stateless ops whose
  seeds come from `tf.data.Dataset.random(seed)`, batched with drop_remainder.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y.astype(np.int32)))
  ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
  ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))
  pad = max(1, x.shape[1] // 8) if x.ndim == 4 else 0

  def prepare(example, pair_seed):
    image, label = example
    if augment != "none":
      s1, s2 = pair_seed, tf.reverse(pair_seed, [0])
      if augment == "flip_crop":
        image = tf.image.stateless_random_flip_left_right(image, seed=s1)
      padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
      image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=s2)
    return image, tf.one_hot(label, num_classes)

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


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


def train(model_spec: str, dataset: Dataset, config: TrainConfig, *, strategy=None,
          work_dir: Optional[str] = None, tensorboard_dir: Optional[str] = None,
          callbacks: Sequence[Any] = (), verbose: int = 2) -> TrainResult:
  """Builds `model_spec` for `dataset` and trains it with `config` under `strategy`.

  Args:
    model_spec: a `tfhull.models` spec, e.g. "mlp:width=512,depth=2".
    dataset: training and test split; the training labels are the (possibly noisy) y_train.
    config: optimizer, schedule, epochs, ...
    strategy: tf.distribute strategy (None: the default strategy).
    work_dir: directory for `keras.callbacks.BackupAndRestore` and the CSV log; an interrupted
      run given the same work_dir resumes from its last finished epoch.
    tensorboard_dir: where TensorBoard event files go (None: none).
    callbacks: more Keras callbacks, run after the built-in ones.
    verbose: Keras progress output (1 bar, 2 one line per epoch, 0 silent).

  Raises:
    UserError: a bad config, a spec that does not fit the data, or a batch larger than the data.
  """
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  config.check()
  models.parse_spec(model_spec)
  strategy = strategy or tf.distribute.get_strategy()
  batch = global_batch_size(config, strategy)
  n = len(dataset.x_train)
  if batch > n:
    raise UserError(f"global batch {batch} (batch_size {config.batch_size} x "
                    f"{strategy.num_replicas_in_sync} replicas) exceeds the {n} training examples; "
                    "lower --batch_size")
  steps = n // batch
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
          metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
  finally:
    keras.config.set_dtype_policy(previous_policy)

  report = models.parameter_report(model, n, dataset.num_classes)
  logging.info("%s: %s parameters, %.1f per training example, %.2f per constraint (n x c); "
               "global batch %d over %d replica(s), %d steps/epoch", model.name,
               f"{report.params:,}", report.ratio_to_samples, report.ratio_to_constraints,
               batch, strategy.num_replicas_in_sync, steps)

  data = input_pipeline(dataset.x_train, dataset.y_train, dataset.num_classes,
                        global_batch=batch, augment=config.augment, seed=config.seed)
  monitor = _monitor(dataset, config, strategy)
  callbacks = [monitor, *callbacks]
  if work_dir:
    from tfhull import io  # pylint: disable=import-outside-toplevel
    io.gfile.makedirs(work_dir)
    callbacks.append(keras.callbacks.CSVLogger(io.join(work_dir, "history.csv"), append=True))
    callbacks.append(keras.callbacks.BackupAndRestore(io.join(work_dir, "backup")))
  if tensorboard_dir:
    callbacks.append(keras.callbacks.TensorBoard(tensorboard_dir, update_freq="epoch"))

  start = time.time()
  fit = model.fit(data, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
                  verbose=verbose)
  wall = time.time() - start
  history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
  if work_dir:
    history = _csv_history(io.join(work_dir, "history.csv")) or history

  eval_kw = dict(batch_size=config.batch_size, strategy=strategy,
                 label_smoothing=config.label_smoothing)
  train_m = evaluate(model, dataset.x_train, dataset.y_train, **eval_kw)
  clean_m = evaluate(model, dataset.x_train, dataset.clean_labels, **eval_kw)
  test_m = evaluate(model, dataset.x_test, dataset.y_test, **eval_kw)
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
      "global_batch_size": batch, "replicas": strategy.num_replicas_in_sync,
      "steps_per_epoch": steps, "train_seconds": round(wall, 3),
  }
  logging.info("trained %s: train accuracy %.4f, test accuracy %.4f after %d epochs (%.1fs)",
               model.name, metrics["train_accuracy"], metrics["test_accuracy"], epochs_run, wall)
  if config.until_interpolation and not metrics["interpolated"]:
    logging.warning("--until_interpolation: training accuracy %.4f < 1 after %d epochs; raise "
                    "--epochs, the learning rate or the width", metrics["train_accuracy"],
                    epochs_run)
  return TrainResult(model=model, history=history, metrics=metrics)


def _csv_history(path: str) -> dict:
  """Per-epoch history from Keras' CSVLogger file; a re-run epoch (after a resume) keeps its last
  row."""
  import csv  # pylint: disable=import-outside-toplevel
  import io as pyio  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  if not io.exists(path):
    return {}
  rows = {}
  for row in csv.DictReader(pyio.StringIO(io.read_bytes(path).decode())):
    rows[int(row["epoch"])] = row
  history: dict[str, list] = {}
  for epoch in sorted(rows):
    for key, value in rows[epoch].items():
      if key != "epoch" and value not in ("", "NA", None):
        history.setdefault(key, []).append(float(value))
  return history
