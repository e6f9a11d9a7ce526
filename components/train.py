r"""Train step: flags -> `tfhull.training.train` -> a Model artifact.

  python -m components.train --model=mlp:width=1024,depth=3 --until_interpolation --epochs=500
  python -m components.train --model=resnet:depth=20 --optimizer=sgd --learning_rate=0.1 \
      --lr_schedule=cosine --weight_decay=5e-4 --augment=flip_crop --strategy=mirrored

Writes `model.keras` (reload with `tfhull.models.load`, safe_mode), `history.json` (per-epoch
loss, accuracy, test accuracy/loss, learning rate), `tensorboard/` event files, and the metrics
(train/test accuracy and loss, parameter count and over-parameterization ratios, wall time) in
`metadata.json`. An interrupted run resumes from its last finished epoch to the same weights as an
uninterrupted one (`checkpoint.npz` in `<artifact>.work/`; docs/guarantees.md).
"""

from absl import flags

from components import common
from tfhull import models
from tfhull import training
from tfhull.study import config as study_config

NAME = "train"
FLAGS = flags.FLAGS


def define_flags() -> None:
  if "model" in FLAGS:
    return
  flags.DEFINE_string("model", "mlp:width=256,depth=2",
                      f"Model spec NAME[:KEY=VALUE,...]; NAME in {', '.join(models.names())}, "
                      "e.g. mlp:width=1024,depth=3, cnn:width=64,depth=4, resnet:depth=20, "
                      "wide_resnet:depth=16,widen=4, linear; or keras:PATH, a saved .keras "
                      "model (safe_mode=True), or savedmodel:PATH, a SavedModel whose "
                      "serving_default signature returns a dict with logits and the layers "
                      "read by layer:KEY; both used as they are, not trained.")
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
  flags.DEFINE_integer("steps_per_execution", 1, "Training steps per compiled call (fewer host "
                       "round trips on TPUs); the weights do not change (a divisor of the steps "
                       "per epoch is used).", lower_bound=1)


def config(v) -> study_config.TrainStepConfig:
  """The train step's config from flag values `v`."""
  return study_config.TrainStepConfig(model=v["model"], training=training.TrainConfig(
      optimizer=v["optimizer"], learning_rate=v["learning_rate"], momentum=v["momentum"],
      schedule=v["lr_schedule"], weight_decay=v["weight_decay"], batch_size=v["batch_size"],
      epochs=v["epochs"], augment=v["augment"], label_smoothing=v["label_smoothing"],
      until_interpolation=v["until_interpolation"], mixed_precision=v["mixed_precision"],
      init_scale=v["init_scale"], seed=v["seed"]),
      steps_per_execution=v["steps_per_execution"])


if __name__ == "__main__":
  common.main(NAME)
