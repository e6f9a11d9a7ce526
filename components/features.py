"""Features step: a Dataset (and Model) artifact -> a Representation artifact, one npz per space.

  python -m components.features --representations=pixel,haar:1:top32,layer:features
  python -m components.features --model_artifact=runs/x/train/0123456789abcdef \
      --representations=logits

Spaces: `pixel`; `haar:L` (orthonormal 2-D Haar, L levels: distances equal the pixel ones) and
`haar:L:topK` (the K coefficients of largest training variance); `layer:NAME` (any layer of the
trained model, flattened; `features` is the penultimate one) and `logits`. Writes
`representation.json` (the index), `labels.npz` and `space_<name>.npz` with `train` and `test`.
"""

import sys

from absl import flags

import tfhull.data
from components import common
from tfhull import models
from tfhull import representations
from tfhull.errors import UserError

NAME = "features"
VERSION = "1"
OUTPUT_TYPE = "Representation"
INPUTS = ("data", "train")

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "representations" in FLAGS:
    return
  flags.DEFINE_list("representations", ["pixel", "haar:1:top32", "layer:features"],
                    "Spaces to compute: pixel, haar:LEVEL, haar:LEVEL:topK, layer:NAME, logits.")
  flags.DEFINE_integer("features_batch_size", 512, "Examples per replica per inference step.",
                       lower_bound=1)


def params() -> dict:
  specs = [representations.parse_representation(s).spec for s in FLAGS.representations]
  return {"representations": specs, "batch_size": FLAGS.features_batch_size}


def check_flags() -> None:
  if not params()["representations"]:  # params() parses every spec.
    raise UserError("--representations is empty; list at least one space "
                    "(e.g. pixel,layer:features)")


def run(inputs: dict):
  given = common.override(NAME, OUTPUT_TYPE)
  if given is not None:
    return given
  check_flags()  # A bad spec fails before any directory is made.
  p = params()

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(inputs["data"].uri)
    strategy = common.strategy()
    model = None
    if representations.needs_model(p["representations"]):
      model = models.load_artifact(inputs["train"], strategy=strategy)
    spaces = [representations.compute(representations.parse_representation(s), ds, model,
                                      batch_size=p["batch_size"], strategy=strategy)
              for s in p["representations"]]
    summary = representations.save(out_dir, spaces, representations.labels_of(ds),
                                   ds.num_classes)
    summary["headline"] = ["spaces"]
    return summary

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
