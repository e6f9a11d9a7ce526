"""Report step: every artifact of the study -> a self-contained HTML report, report.md,
metrics.json and each of its tables as CSV beside it (summary, hull, adversarial, robustness,
rays, provenance, versions).

  python -m components.report --flagfile=configs/digits_mlp.flags
  open runs/digits_mlp/report/<fingerprint>/report.html

The page holds the configuration and provenance (artifact fingerprints, versions), the headline
table of the paper's quantities, training curves, d_hull / d_NN / ratio distributions per space,
test images beside their hull projections and supporting training images, support sizes,
own- vs other-class hull distances, minimal adversarial perturbations against hull distances,
robust accuracy against eps, ray scans and the linear-head analysis. Each section opens with a
sentence generated from its numbers; spaces and query sets carry human names ("minimal PGD
(L2)", "penultimate layer (256-d)") in one order everywhere; the CSV files keep the internal ids
beside them.
"""

from absl import flags

from components import common
from tfhull.study import config as study_config

NAME = "report"
FLAGS = flags.FLAGS


def define_flags() -> None:
  if "report_image_rows" in FLAGS:
    return
  flags.DEFINE_integer("report_image_rows", 6, "Test images shown beside their pixel-space hull "
                       "projections.", lower_bound=0)
  flags.DEFINE_string("report_title", "", "Report title (default: dataset and model).")


def config(v) -> study_config.ReportConfig:
  """The report step's config from flag values `v`."""
  return study_config.ReportConfig(image_rows=v["report_image_rows"], title=v["report_title"])


if __name__ == "__main__":
  common.main(NAME)
