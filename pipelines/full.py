r"""The whole study: every step's artifacts, each computed once from its true inputs.

  python -m pipelines.full                                   # configs/digits_mlp.flags' study
  python -m pipelines.full --flagfile=configs/digits_mlp.flags --output_root=/tmp/run
  python -m pipelines.full --flagfile=configs/digits_mlp.flags --seeds=0,1,2

The flags become a `tfhull.study.StudyConfig`; the study graph (`tfhull.study.graph`) runs data,
train, attack, the features of each space, one hull measurement per (space, query split, kind),
analyze and report. A node whose artifact already exists for the same params and inputs is a
cache hit. At the end the location of every artifact is printed. With `--seeds` (`pipelines.seeds`)
the study runs once per model seed, sharing every seed-independent artifact, and a Seeds page
gives the headline numbers with 95% intervals over seeds and test samples.
"""

from components import common
from pipelines import seeds

common.define_all()


def main(argv):
  common.check_argv(argv)
  chosen = seeds.parse(seeds.SEEDS.value)
  if chosen:
    seeds.run_full(common.study_config(), chosen)
  else:
    common.run_study(common.study_config(), ["report"])


if __name__ == "__main__":
  common.run_app(main, lambda: common.pipeline_groups("full (pipelines.full)", [seeds.SEEDS],
                                                      common.COMPONENTS))
