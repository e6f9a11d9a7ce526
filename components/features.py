"""Features step: a Dataset (and Model) artifact -> a Representation artifact, one npz per space.

  python -m components.features --representations=pixel,haar:1:top32,layer:features
  python -m components.features --model_artifact=runs/x/train/0123456789abcdef \
      --representations=logits

Spaces: `pixel`; `haar:L` (orthonormal 2-D Haar, L levels: distances equal the pixel ones) and
`haar:L:topK` (the K coefficients of largest training variance); `layer:NAME` (any layer of the
trained model, flattened; `features` is the penultimate one) and `logits`. Writes
`representation.json` (the index), `labels.npz` and `space_<name>.npz` with `train` and `test`,
and (with --features_adversarial) the attack step's minimal adversarial examples and flip points
as splits `adv_<attack>_<norm>` and `flip_<attack>_<norm>`, for `--hull_query_splits`.
"""

import sys

from absl import flags

import tfhull.data
from components import common
from tfhull import attacks
from tfhull import io
from tfhull import models
from tfhull import representations
from tfhull.errors import UserError

NAME = "features"
VERSION = "1"
OUTPUT_TYPE = "Representation"
INPUTS = ("data", "train", "attack")

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "representations" in FLAGS:
    return
  flags.DEFINE_list("representations", ["pixel", "haar:1:top32", "layer:features"],
                    "Spaces to compute: pixel, haar:LEVEL, haar:LEVEL:topK, layer:NAME, logits.")
  flags.DEFINE_integer("features_batch_size", 512, "Examples per replica per inference step.",
                       lower_bound=1)
  flags.DEFINE_bool("features_adversarial", True, "Also map the attack step's minimal "
                    "adversarial examples and their flip points (splits adv_<attack>_<norm>, "
                    "flip_<attack>_<norm>).")


def params() -> dict:
  specs = [representations.parse_representation(s).spec for s in FLAGS.representations]
  return {"representations": specs, "batch_size": FLAGS.features_batch_size,
          "adversarial": FLAGS.features_adversarial}


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
    labels, extra = representations.labels_of(ds), {}
    if p["adversarial"]:
      records = io.load_npz(inputs["attack"].path("adversarial.npz"))
      for split, (images, y, source) in attacks.query_sets(records).items():
        extra[split] = images
        labels[split], labels[f"{split}_source"] = y, source
    spaces = [representations.compute(representations.parse_representation(s), ds, model,
                                      extra=extra, batch_size=p["batch_size"],
                                      strategy=strategy)
              for s in p["representations"]]
    summary = representations.save(out_dir, spaces, labels, ds.num_classes)
    summary["headline"] = ["spaces"]
    return summary

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
