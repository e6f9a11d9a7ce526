"""Report step: every artifact of the study -> a self-contained HTML report, report.md and
metrics.json.

  python -m components.report --flagfile=configs/digits_mlp.flags
  open runs/digits_mlp/report/<fingerprint>/report.html

The page holds the configuration and provenance (artifact fingerprints, versions), the headline
table of the paper's quantities, training curves, d_hull / d_NN / ratio distributions per space,
test images beside their hull projections and supporting training images, support sizes,
own- vs other-class hull distances, minimal adversarial perturbations against hull distances,
robust accuracy against eps, ray scans and the linear-head analysis.
"""

import sys

from absl import flags
import numpy as np

import tfhull.data
from components import common
from tfhull import analysis
from tfhull import io
from tfhull import report
from tfhull.hull import saved
from tfhull.report.html import fmt

NAME = "report"
VERSION = "1"
OUTPUT_TYPE = "Report"
INPUTS = ("data", "train", "attack", "features", "hull", "analyze")

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "report_image_rows" in FLAGS:
    return
  flags.DEFINE_integer("report_image_rows", 6, "Test images shown beside their pixel-space hull "
                       "projections.", lower_bound=0)
  flags.DEFINE_string("report_title", "", "Report title (default: dataset and model).")


def params() -> dict:
  return {"image_rows": FLAGS.report_image_rows, "title": FLAGS.report_title}


def check_flags() -> None:
  params()


def headline(arts: dict, an: dict) -> tuple:
  """The summary table [(quantity, value, meaning)] and the numbers behind it (metrics.json)."""
  train, attack, hull = arts["train"].summary, arts["attack"].summary, arts["hull"].summary
  metrics = {
      "params": train["params"], "params_per_example": train["params_per_example"],
      "params_per_constraint": train["params_per_constraint"],
      "train_accuracy": train["train_accuracy"], "test_accuracy": train["test_accuracy"],
      "epochs_run": train["epochs_run"],
      "test_fraction_outside": hull["test_fraction_outside"],
      "median_test_distance": hull["median_test_distance"],
      "median_dhull_over_dnn": {s: d["test"]["ratio"].get("median")
                                for s, d in an["hull"].items() if "test" in d},
      "median_nnz": {s: d["test"]["nnz"].get("median") for s, d in an["hull"].items()
                     if "test" in d},
      "adversarial_fraction_outside": {s: {k: v["fraction_outside"] for k, v in d.items()
                                           if k != "test"} for s, d in an["hull"].items()},
      "clean_accuracy_attacked": attack["clean_accuracy"],
      "worst_case_robust_accuracy": attack["worst_case_robust_accuracy"],
      "median_minimal_l2": attack["median_minimal_l2"],
      "ray_first_crossing": (an["rays"] or {}).get("categories"),
      "linear_head": an["linear_head"],
      "minimal_perturbation_vs_hull": an["adversarial"],
  }
  rows = [
      ("Parameters", f"{train['params']:,}", f"{fmt(train['params_per_example'])} per training "
       f"example, {fmt(train['params_per_constraint'])} per constraint (n x classes)"),
      ("Training accuracy", fmt(train["train_accuracy"], 4),
       f"after {train['epochs_run']} epochs; 1 means the model interpolates the training set"),
      ("Test accuracy", fmt(train["test_accuracy"], 4), "on the clean test set"),
  ]
  for space, frac in hull["test_fraction_outside"].items():
    ratio = metrics["median_dhull_over_dnn"].get(space)
    rows.append((f"Test outside the hull [{space}]", fmt(frac),
                 f"fraction certified outside; median d_hull {fmt(hull['median_test_distance'][space])}"
                 f", median d_hull/d_NN {fmt(ratio)}"))
  for space, by_split in metrics["adversarial_fraction_outside"].items():
    if by_split:
      rows.append((f"Adversarial/flip points outside [{space}]",
                   ", ".join(f"{k}: {fmt(v)}" for k, v in by_split.items()),
                   "fraction of minimal adversarial examples and flip points certified outside"))
  for norm, by_eps in attack["worst_case_robust_accuracy"].items():
    rows.append((f"Worst-case robust accuracy (L{norm})",
                 ", ".join(f"eps {k}: {fmt(v)}" for k, v in by_eps.items()),
                 "point-wise over all attacks"))
  for key, med in attack["median_minimal_l2"].items():
    rows.append((f"Median minimal perturbation [{key}]", fmt(med),
                 "L2 norm of the smallest label-flipping perturbation, pixel units"))
  if an["rays"]:
    rows.append(("First boundary crossing along the ray", ", ".join(
        f"{k}: {fmt(v)}" for k, v in an["rays"]["categories"].items()),
                 "ray from the hull projection (t=0) through the test sample (t=1)"))
  if an["linear_head"]:
    lh = an["linear_head"]
    rows.append(("Class hulls inside their own region",
                 f"{lh['classes_whose_hull_is_inside_their_region']} of "
                 f"{len(lh['class_min_margin'])}",
                 "penultimate features, linear head: min margin over each class hull > 0"))
    rows.append(("Test features nearer a boundary than the hull",
                 fmt(lh["fraction_boundary_closer_than_hull"]),
                 f"median boundary distance {fmt(lh['median_boundary_distance'])} vs "
                 f"median hull distance {fmt(lh['median_hull_distance'])}"))
  return rows, metrics


def inputs_for(arts: dict, rows: int) -> report.ReportInputs:
  """Assembles the report's inputs from the artifacts (all loaded, checked)."""
  ds = tfhull.data.load(arts["data"].uri)
  an = io.read_json(arts["analyze"].path("analysis.json"))
  an_arrays = io.load_npz(arts["analyze"].path("analysis.npz"))
  measured = saved.load(arts["hull"].uri)
  history = io.read_json(arts["train"].path("history.json"))
  names = list(ds.class_names)
  table, metrics = headline(arts, an)
  views = []
  for (space, split), a in measured.items():
    labels = a.get("query_labels")
    views.append(report.HullView(
        space=space, split=split, distance=a["distance"], lower_bound=a["lower_bound"],
        nearest_distance=a["nearest_distance"], outside=a["outside"], nnz=a["nnz"],
        own_class_distance=a.get("own_class_distance"),
        nearest_other_class_distance=a.get("nearest_other_class_distance"),
        own_class_weight=(analysis.own_class_weight(a["support"], a["weights"], ds.y_train,
                                                    labels) if labels is not None else None)))
  image_rows = []
  pixel = measured.get(("pixel", "test"))
  if pixel is not None and len(ds.input_shape) == 3:
    shape = ds.input_shape
    for i in np.argsort(pixel["distance"])[::-1][:rows]:
      order = np.argsort(-pixel["weights"][i])
      support = [(ds.x_train[pixel["support"][i, j]], float(pixel["weights"][i, j]),
                  names[ds.y_train[pixel["support"][i, j]]])
                 for j in order[:8] if pixel["support"][i, j] >= 0 and pixel["weights"][i, j] > 0]
      image_rows.append(report.ImageRow(
          test=ds.x_test[i], projection=pixel["projection"][i].reshape(shape),
          label=names[ds.y_test[i]], distance=float(pixel["distance"][i]), support=support))
  adversarial = [{"norm": norm, "perturbation": an_arrays[f"adv_{norm}_perturbation"],
                  "d_hull": an_arrays[f"adv_{norm}_d_hull"], "d_nn": an_arrays[f"adv_{norm}_d_nn"]}
                 for norm in ("inf", "2") if f"adv_{norm}_perturbation" in an_arrays]
  rays = None
  if "ray_t" in an_arrays:
    rays = {"t": an_arrays["ray_t"], "margin": an_arrays["ray_margin"],
            "crossing": an_arrays["ray_crossing"], "categories": an["rays"]["categories"]}
  head = None
  if "class_min_margin" in an_arrays:
    head = {"class_min_margin": an_arrays["class_min_margin"],
            "boundary_distance": an_arrays["boundary_distance"],
            "hull_distance": an_arrays["head_hull_distance"]}
  attack = arts["attack"].summary
  return report.ReportInputs(
      title=FLAGS.report_title or f"tfhull: {arts['data'].summary.get('source')} with "
                                  f"{arts['train'].summary.get('model_spec')}",
      provenance=common.provenance(arts), config=common.resolved_flags(),
      versions=arts["train"].metadata.get("versions", {}), headline=table, metrics=metrics,
      history=history, hull=views, image_rows=image_rows, adversarial=adversarial,
      robustness={"robust_accuracy": attack["robust_accuracy"],
                  "worst_case_robust_accuracy": attack["worst_case_robust_accuracy"],
                  "clean_accuracy": attack["clean_accuracy"]},
      rays=rays, linear_head=head, class_names=tuple(names))


def run(inputs: dict):
  p = params()

  def build(out_dir: str) -> dict:
    result = report.write_report(inputs_for(dict(inputs), p["image_rows"]), out_dir)
    return {"figures": result["figures"], "figure_names": result["figure_names"],
            "skipped": result["skipped"], "headline": ["figures", "skipped"]}

  return common.run_step(sys.modules[__name__], p, inputs, build)


if __name__ == "__main__":
  common.main(NAME)
