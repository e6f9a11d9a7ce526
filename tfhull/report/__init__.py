"""tfhull.report: one self-contained HTML report of a study, plus report.md and metrics.json.

A pure library: plain arrays and dicts in, files out (local or gs://); it reads no artifacts.

  inputs = ReportInputs(title=..., headline=[("test images outside the hull", "100%", "...")],
                        hull=[HullView(space="pixel", split="test", distance=d, ...)], ...)
  result = write_report(inputs, "runs/digits_mlp/report")  # or gs://bucket/run/report
  result["figures"], result["html"]                         # 10, ".../report.html"

Figures are drawn with matplotlib on Agg canvases (no pyplot state) and are deterministic; a
figure whose inputs are absent is skipped with a one-line note in the report.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "6"

from tfhull.report.html import write_report
from tfhull.report.inputs import HullView, ImageRow, ReportInputs

__all__ = ["HullView", "ImageRow", "ReportInputs", "write_report"]
