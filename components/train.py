"""Train step: flags -> `tfhull.training.train` -> a Model artifact.

  python -m components.train --model=mlp:width=1024,depth=3 --until_interpolation --epochs=500
  python -m components.train --model=resnet:depth=20 --optimizer=sgd --learning_rate=0.1 \
      --lr_schedule=cosine --weight_decay=5e-4 --augment=flip_crop --strategy=mirrored

Writes `model.keras` (reload with `tfhull.models.load`, safe_mode), `history.json` (per-epoch
loss, accuracy, test accuracy/loss, learning rate), `tensorboard/` event files, and the metrics
(train/test accuracy and loss, parameter count and over-parameterization ratios, wall time) in
`metadata.json`. An interrupted run resumes from its last finished epoch (Keras BackupAndRestore
in `<artifact>.work/`).
"""

import dataclasses
import sys

from absl import flags
from absl import logging

import tfhull.data
from components import common
from tfhull import io
from tfhull import models
from tfhull import training

NAME = "train"
VERSION = "1"
OUTPUT_TYPE = "Model"
INPUTS = ("data",)

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "model" in FLAGS:
    return
  flags.DEFINE_string("model", "mlp:width=256,depth=2",
                      f"Model spec NAME[:KEY=VALUE,...]; NAME in {', '.join(models.names())}, "
                      "e.g. mlp:width=1024,depth=3, cnn:width=64,depth=4, resnet:depth=20, "
                      "wide_resnet:depth=16,widen=4, linear.")
  flags.DEFINE_enum("optimizer", "adam", training.OPTIMIZERS, "sgd (with --momentum) or adam.")
  flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")
  flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
  flags.DEFINE_enum("lr_schedule", "constant", training.SCHEDULES,
                    "constant; cosine (decay to 0 over --epochs); step (x0.1 at 50% and 75%).")
  flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay per step (lr x wd x w).")
  flags.DEFINE_integer("batch_size", 128, "Training batch per replica; the global batch is this "
                       "times the number of replicas.")
  flags.DEFINE_integer("epochs", 100, "Training epochs (the maximum with --until_interpolation).")
  flags.DEFINE_enum("augment", "none", training.AUGMENTATIONS,
                    "Training augmentation: random crop after padding H/8 pixels, optionally with "
                    "horizontal flips (flip_crop, for natural images, not digits).")
  flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing of the cross-entropy.")
  flags.DEFINE_bool("until_interpolation", True, "Stop as soon as training accuracy is 100% "
                    "(checked exactly on the unaugmented training set), the regime of the paper.")
  flags.DEFINE_float("init_scale", 1.0, "Multiplies every initial kernel: the initialization "
                     "regime (small scales favour simple interpolants, large ones lazy training).")
  flags.DEFINE_bool("mixed_precision", False, "bfloat16 compute with float32 variables "
                    "(TPUs, recent GPUs).")


def config() -> training.TrainConfig:
  return training.TrainConfig(
      optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, momentum=FLAGS.momentum,
      schedule=FLAGS.lr_schedule, weight_decay=FLAGS.weight_decay, batch_size=FLAGS.batch_size,
      epochs=FLAGS.epochs, augment=FLAGS.augment, label_smoothing=FLAGS.label_smoothing,
      until_interpolation=FLAGS.until_interpolation, mixed_precision=FLAGS.mixed_precision,
      init_scale=FLAGS.init_scale,
      seed=common.SEED.value)


def params() -> dict:
  """What decides the weights. The strategy is not in the key: a model trained on a TPU is reused
  by a CPU run of the same flagfile (the replica count is recorded in the metrics)."""
  return {"model": FLAGS.model, **dataclasses.asdict(config())}


def check_flags() -> None:
  config().check()
  models.parse_spec(FLAGS.model)


def run(inputs: dict):
  given = common.override(NAME, OUTPUT_TYPE)
  if given is not None:
    return given
  check_flags()  # Bad flags fail before any directory is made.
  cfg = config()

  def build(out_dir: str, work_dir: str) -> dict:
    ds = tfhull.data.load(inputs["data"].uri)
    result = training.train(FLAGS.model, ds, cfg, strategy=common.strategy(), work_dir=work_dir,
                            tensorboard_dir=io.join(out_dir, "tensorboard"),
                            verbose=1 if sys.stdout.isatty() else 2)
    models.save(result.model, io.join(out_dir, models.MODEL_FILE))
    io.write_json(io.join(out_dir, "history.json"), result.history)
    logging.info("train: %s", {k: result.metrics[k] for k in ("train_accuracy", "test_accuracy",
                                                                "params", "epochs_run")})
    return {**result.metrics, "model_spec": FLAGS.model, "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes, "n_train": len(ds.x_train),
            "headline": ["params", "params_per_example", "train_accuracy", "test_accuracy",
                         "epochs_run"]}

  return common.run_step(sys.modules[__name__], params(), inputs, build, resumable=True)


if __name__ == "__main__":
  common.main(NAME)
