"""The study as a graph: typed configs (`config`), the step graph (`graph`), what each node
computes (`steps`) and sweep grids (`grid`).

  from tfhull import study
  cfg = study.StudyConfig(run=study.RunConfig(output_root="/tmp/run"))
  done = study.run(study.build(cfg), ["report"], cfg)
"""

from tfhull.study.config import AnalyzeConfig
from tfhull.study.config import AttackStepConfig
from tfhull.study.config import DataConfig
from tfhull.study.config import FeaturesConfig
from tfhull.study.config import HullConfig
from tfhull.study.config import ReportConfig
from tfhull.study.config import RunConfig
from tfhull.study.config import StudyConfig
from tfhull.study.config import TrainStepConfig
from tfhull.study.graph import build
from tfhull.study.graph import check
from tfhull.study.graph import Graph
from tfhull.study.graph import Node
from tfhull.study.graph import run
from tfhull.study.graph import STEPS
from tfhull.study.grid import expand
