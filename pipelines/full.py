r"""The whole study: every step's artifacts, each computed once from its true inputs.

  python -m pipelines.full                                   # configs/digits_mlp.flags' study
  python -m pipelines.full --flagfile=configs/digits_mlp.flags --output_root=/tmp/run

The flags become a `tfhull.study.StudyConfig`; the study graph (`tfhull.study.graph`) runs data,
train, attack, the features of each space, one hull measurement per (space, query split, kind),
analyze and report. A node whose artifact already exists for the same params and inputs is a
cache hit. At the end the location of every artifact is printed.
"""

from components import common

common.define_all()


def main(argv):
  common.check_argv(argv)
  common.run_study(common.study_config(), ["report"])


if __name__ == "__main__":
  common.run_app(main, lambda: common.step_groups(common.COMPONENTS))
