r"""Features step: a Dataset (and Model) artifact -> a Representation artifact, one npz per space.

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

from absl import flags

from components import common
from tfhull.study import config as study_config

NAME = "features"
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


def config(v) -> study_config.FeaturesConfig:
  """The features step's config from flag values `v`."""
  return study_config.FeaturesConfig(representations=tuple(v["representations"]),
                                     batch_size=v["features_batch_size"],
                                     adversarial=v["features_adversarial"])


if __name__ == "__main__":
  common.main(NAME)
