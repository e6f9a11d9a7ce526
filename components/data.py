"""Data step: flags -> `tfhull.data.prepare` -> a Dataset artifact (`data.npz`, `dataset.json`).

  python -m components.data --dataset=digits --classes=3,8 --label_noise=0.2
  python -m components.data --dataset=tfds:mnist --data_dir=/data/tfds --train_size=10000

Options are checked before any artifact directory is created; a source that fails to load leaves
no artifact behind. `--download` is not part of the cache key (it changes how, not what, is read);
`--data_dir` is. After changing the files behind an idx:/npz: spec in place, pass --force=data.
"""

from absl import flags

import tfhull.data
from components import common
from tfhull.study import config as study_config

NAME = "data"
FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the data flags (idempotent, so tests and the pipeline may both call it)."""
  if "dataset" in FLAGS:
    return
  flags.DEFINE_string(
      "dataset", "digits", "Data source: digits (offline default), tfds:NAME, idx:DIR, npz:FILE, "
      f"toy2d:{{{','.join(tfhull.data.TOY2D)}}}.")
  flags.DEFINE_string("data_dir", None, "TFDS data directory with prepared data (tfds: sources).")
  flags.DEFINE_bool("download", False, "Let TFDS download and prepare the data (needs internet).")
  flags.DEFINE_integer("train_size", 0, "Training examples, balanced over classes (0 = all).",
                       lower_bound=0)
  flags.DEFINE_integer("test_size", 0, "Test examples, balanced over classes (0 = all).",
                       lower_bound=0)
  flags.DEFINE_list("classes", [], "Classes to keep (ids or names), relabelled 0..k-1 in the "
                    "order given; empty = all.")
  flags.DEFINE_float("label_noise", 0.0, "Fraction of training labels redrawn uniformly at "
                     "random (Zhang et al. 2017); test labels stay clean.",
                     lower_bound=0.0, upper_bound=1.0)
  flags.DEFINE_enum("corruption", "none", tfhull.data.CORRUPTIONS,
                    "Training-input corruption (Zhang et al. 2017); the test split stays clean.")


def config(v) -> study_config.DataConfig:
  """The data step's config from flag values `v`."""
  return study_config.DataConfig(
      dataset=v["dataset"], data_dir=v["data_dir"], download=v["download"],
      train_size=v["train_size"], test_size=v["test_size"], classes=tuple(v["classes"]),
      label_noise=v["label_noise"], corruption=v["corruption"], seed=v["seed"])


if __name__ == "__main__":
  common.main(NAME)
