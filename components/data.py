"""Data step: flags -> `tfhull.data.prepare` -> a Dataset artifact (`data.npz`, `dataset.json`).

  python -m components.data --dataset=digits --classes=3,8 --label_noise=0.2
  python -m components.data --dataset=tfds:mnist --data_dir=/data/tfds --train_size=10000

Options are checked before any artifact directory is created; a source that fails to load leaves
no artifact behind. `--download` is not part of the cache key (it changes how, not what, is read);
`--data_dir` is. After changing the files behind an idx:/npz: spec in place, pass --force=data.
"""

import sys

from absl import flags

import tfhull.data
from components import common
from tfhull import artifacts

NAME = "data"
VERSION = "1"
OUTPUT_TYPE = "Dataset"
INPUTS = ()

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


def params() -> dict:
  """The flags that determine the payload (the cache key)."""
  return {
      "dataset": FLAGS.dataset,
      "data_dir": FLAGS.data_dir,
      "train_size": FLAGS.train_size,
      "test_size": FLAGS.test_size,
      "classes": list(FLAGS.classes),
      "label_noise": FLAGS.label_noise,
      "corruption": FLAGS.corruption,
      "seed": common.SEED.value,
  }


def check_flags() -> None:
  """Cheap checks of this step's flags (UserError), before any step of the pipeline runs."""
  if common.override(NAME, OUTPUT_TYPE) is None:
    p = params()
    tfhull.data.check_options(p["dataset"], **{k: p[k] for k in _OPTIONS})


_OPTIONS = ("train_size", "test_size", "classes", "label_noise", "corruption", "seed")


def run(inputs) -> artifacts.Artifact:
  """Returns the `--data_artifact` override, the cached Dataset, or builds it."""
  given = common.override(NAME, OUTPUT_TYPE)
  if given is not None:
    return given
  p = params()
  options = {k: p[k] for k in _OPTIONS}
  tfhull.data.check_options(p["dataset"], **options)  # Before any directory is created.

  def build(tmp_dir: str) -> dict:
    ds = tfhull.data.prepare(p["dataset"], data_dir=p["data_dir"], download=FLAGS.download,
                             **options)
    return tfhull.data.save(ds, tmp_dir)

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
