r"""Agreement of several interpolating models inside versus outside the training hull, on images.

  python -m pipelines.agreement --flagfile=configs/agreement_digits.flags

Trains one model per (model spec in --agreement_models, seed in --agreement_seeds) through the
study graph (cached Model artifacts; the data, pixel features and the test set's pixel hull
distances are shared by all), then measures how often the models' predicted labels disagree
(`tfhull.analysis.agreement`) on three point sets:
  (a) random convex combinations of training images (inside the hull by construction), of one
      class and of distinct classes (Dirichlet weights over --agreement_parts images);
  (b) the test images, binned by d_hull/d_NN in pixel space (--agreement_ratio_bins);
  (c) points p + t (x - p) on each test image's ray from its hull projection p (t = 0, on the
      hull) through the image (t = 1) and beyond (--agreement_ray_t; pixels are not clipped).
An AgreementReport artifact holds the page: a table and figure with 95% intervals (bootstrap over
the points) and a headline sentence generated from the numbers.
"""

import dataclasses

from absl import flags
from absl import logging
import numpy as np

from components import common
from tfhull.errors import UserError

common.define_all()
FLAGS = flags.FLAGS
MODELS = flags.DEFINE_string("agreement_models", "", "Model specs separated by '|' (specs "
                             "contain commas); empty: --model.")
SEEDS = flags.DEFINE_list("agreement_seeds", ["0", "1", "2"], "Model seeds; one model per "
                          "(spec, seed).")
MIXTURES = flags.DEFINE_integer("agreement_mixtures", 1000, "Convex combinations of training "
                                "images of each kind (same class, mixed classes).", lower_bound=1)
PARTS = flags.DEFINE_integer("agreement_parts", 3, "Training images per convex combination.",
                             lower_bound=2)
BINS = flags.DEFINE_list("agreement_ratio_bins", ["0", "0.5", "0.6", "0.7", "0.8", "1"],
                         "Edges of the test images' d_hull/d_NN bins (pixel space).")
RAY_T = flags.DEFINE_list("agreement_ray_t", ["0", "0.5", "1", "1.5", "2", "3"], "Values of t "
                          "on the rays p + t (x - p) (0: hull projection, 1: the test image).")
VERSION = "2"  # 2: full-precision CSVs, the interpolating title only when true.
SPACE = "pixel"
HULL = f"hull/{SPACE}/test"


def _floats(name: str, values) -> list:
  try:
    return [float(v) for v in values]
  except ValueError:
    raise UserError(f"--{name}={','.join(values)} must be numbers, e.g. 0,0.5,1") from None


def settings() -> dict:
  """The pipeline's own flags, checked (UserError before any work)."""
  from pipelines import seeds as seeds_pipeline  # pylint: disable=import-outside-toplevel
  specs = [s.strip() for s in MODELS.value.split("|") if s.strip()] or [FLAGS.model]
  seeds = seeds_pipeline.parse(SEEDS.value)
  if len(specs) * len(seeds) < 2:
    raise UserError("agreement needs >= 2 models: list several --agreement_seeds or "
                    "--agreement_models")
  edges = _floats("agreement_ratio_bins", BINS.value)
  if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
    raise UserError(f"--agreement_ratio_bins={','.join(BINS.value)} must be >= 2 increasing "
                    "edges")
  return {"models": specs, "seeds": seeds, "mixtures": MIXTURES.value, "parts": PARTS.value,
          "ratio_bins": edges, "ray_t": _floats("agreement_ray_t", RAY_T.value)}


def study_configs(base, specs, seeds) -> list:
  """[(name, StudyConfig)] of every model, each checked for the targets before any runs; the
  same model listed twice (the same spec, however written, with the same seed) is refused."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  from tfhull.study import seeds as seeds_lib  # pylint: disable=import-outside-toplevel
  out, seen = [], {}
  for spec in specs:
    for s in seeds:
      name, kwargs = registry.parse_spec(spec)
      key = (name, tuple(sorted(kwargs.items())), s)
      if key in seen:
        raise UserError(f"--agreement_models/--agreement_seeds: {seen[key]!r} and {spec!r} with "
                        f"seed {s} are the same model; list each model once")
      seen[key] = spec
      cfg = seeds_lib.seeded(dataclasses.replace(
          base, train=dataclasses.replace(base.train, model=spec)), s)
      if HULL not in study.build(cfg).nodes:
        raise UserError(f"agreement needs the {SPACE} test hull distances: add {SPACE} to "
                        "--representations and test to --hull_query_splits")
      study.check(cfg, ["train", HULL])
      out.append((f"{spec} seed {s}", cfg))
  return out


def check_parts(train_counts, parts: int) -> None:
  """UserError unless both kinds of mixtures of `parts` images can be drawn from a training set
  with these images per class (the data artifact's `train_counts`)."""
  present = sum(c > 0 for c in train_counts)
  if present < parts:
    raise UserError(f"--agreement_parts={parts}: mixed-class mixtures need {parts} classes, the "
                    f"training set has {present}; lower --agreement_parts or keep more --classes")
  if max(train_counts) < parts:
    raise UserError(f"--agreement_parts={parts}: same-class mixtures need a class with {parts} "
                    f"training images, the largest has {max(train_counts)}; lower "
                    "--agreement_parts or raise --train_size")


def measure(ds, models, hull: dict, opts: dict, *, seed: int = 0, batch_size: int = 1024) -> dict:
  """{"inside": [Agreement], "tests": [Agreement], "rays": [Agreement], "train_accuracy": [..],
  "test_accuracy": [..], "ratio": (m,)} of the models (k) on the three point sets."""
  from tfhull import models as models_lib  # pylint: disable=import-outside-toplevel
  from tfhull.analysis import agreement as ag  # pylint: disable=import-outside-toplevel

  def labels(x):
    return np.stack([models_lib.predict(m, x, batch_size=batch_size).argmax(1) for m in models])

  inside = [ag.agreement(labels(ds.x_train), "training images")]
  for same, name in ((True, "same-class mixtures"), (False, "mixed-class mixtures")):
    mix = ag.mixtures(ds.x_train, ds.y_train, opts["mixtures"], same_class=same,
                      parts=opts["parts"], seed=seed)
    inside.append(ag.agreement(labels(mix.points), name))
  test_labels = labels(ds.x_test)
  ratio = np.asarray(hull["distance"], np.float64) / np.asarray(hull["nearest_distance"],
                                                                np.float64)
  bins = ag.ratio_bins(ratio, opts["ratio_bins"])
  edges = opts["ratio_bins"]
  tests = [ag.agreement(test_labels, "all test images")]
  for b in range(len(edges) - 1):
    if np.any(bins == b):
      tests.append(ag.agreement(test_labels[:, bins == b],
                                f"test, d_hull/d_NN in [{edges[b]:g}, {edges[b + 1]:g})"))
  pts = ag.ray_points(ds.x_test, hull["projection"], opts["ray_t"])
  rays = [ag.agreement(labels(p), f"ray t = {t:g}") for t, p in zip(opts["ray_t"], pts)]
  acc = lambda lab, y: [float(np.mean(r == y)) for r in lab]  # pylint: disable=unnecessary-lambda-assignment
  return {"inside": inside, "tests": tests, "rays": rays, "ratio": ratio,
          "train_accuracy": acc(labels(ds.x_train), ds.y_train),
          "test_accuracy": acc(test_labels, ds.y_test)}


def _bars(ax, items, color):
  from tfhull.report import figures  # pylint: disable=import-outside-toplevel
  y = np.arange(len(items))
  est = np.array([a.disagreement.estimate for a in items])
  err = np.array([[a.disagreement.estimate - a.disagreement.low,
                   a.disagreement.high - a.disagreement.estimate] for a in items]).T
  ax.barh(y, est, xerr=err, color=color, capsize=3)
  ax.set_yticks(y)
  ax.set_yticklabels([a.region for a in items], fontsize=figures.FONT - 1)
  ax.invert_yaxis()


def figure(res: dict, ray_t):
  """Disagreement by region (bars: inside, test bins) and along the rays (line)."""
  from tfhull.report import figures  # pylint: disable=import-outside-toplevel
  fig = figures._figure(10.0, 3.6)  # pylint: disable=protected-access
  a1, a2 = fig.subplots(1, 2, width_ratios=[1.3, 1])
  items = res["inside"] + res["tests"]
  _bars(a1, items, ["C2"] * len(res["inside"]) + ["C1"] * len(res["tests"]))
  figures._style(a1, title="Inside the hull (green) vs test images (orange)",  # pylint: disable=protected-access
                 xlabel="fraction of points where the models disagree", ylabel="")
  r = res["rays"]
  est = np.array([a.disagreement.estimate for a in r])
  a2.errorbar(ray_t, est, yerr=[est - [a.disagreement.low for a in r],
                                [a.disagreement.high for a in r] - est], fmt="o-", capsize=3)
  a2.axvline(1.0, color="grey", lw=0.8, ls="--")
  figures._style(a2, title="Along the rays p + t (x - p)",  # pylint: disable=protected-access
                 xlabel="t (0: hull projection, 1: test image)", ylabel="disagreement")
  return figures.Plot("agreement", "Disagreement of the models by region",
                      "Fraction of points on which not all models give the same label, with 95% "
                      "bootstrap intervals over the points.", figures._png(fig))  # pylint: disable=protected-access


def write_page(res: dict, names, opts: dict, out_dir: str, page: dict) -> dict:
  from tfhull.analysis import agreement as ag  # pylint: disable=import-outside-toplevel
  from tfhull.report import html  # pylint: disable=import-outside-toplevel
  text = ag.headline(res["inside"][1:], res["tests"][:1] + res["rays"][-1:])
  # "Interpolating" only when every model classifies every training image correctly.
  interpolating = all(a >= 1.0 for a in res["train_accuracy"])
  kind = "interpolating models" if interpolating else "models (not all interpolating)"
  s = html.Section("agreement", f"Agreement of {len(names)} {kind}",
                   "Mixtures are convex combinations of training images (inside the training "
                   "hull by construction); test images are binned by their pixel-space ratio of "
                   "hull distance to nearest-neighbour distance; ray points go from each test "
                   "image's hull projection (t = 0) through the image (t = 1) and beyond. "
                   "Intervals: 95% bootstrap over the points (the models are fixed).",
                   headline=text)
  rows = [(a.region, str(a.points), f"{100 * a.disagreement.estimate:.1f}%",
           f"{100 * a.disagreement.low:.1f}-{100 * a.disagreement.high:.1f}%",
           f"{100 * a.pairwise.estimate:.1f}%")
          for a in res["inside"] + res["tests"] + res["rays"]]
  regions = res["inside"] + res["tests"] + res["rays"]
  s.tables.append(html.Table(
      "Disagreement by region", ("points", "count", "disagreement", "95% interval",
                                 "mean pairwise"), rows, name="agreement",
      csv_header=("region", "points", "disagreement", "low", "high", "pairwise"),
      csv_rows=[(a.region, a.points, a.disagreement.estimate, a.disagreement.low,
                 a.disagreement.high, a.pairwise.estimate) for a in regions]))
  s.tables.append(html.Table("The models", ("model", "train accuracy", "test accuracy"),
                             [(n, f"{a:.4f}", f"{b:.4f}") for n, a, b in zip(
                                 names, res["train_accuracy"], res["test_accuracy"])],
                             name="models", csv_header=("model", "train_accuracy",
                                                        "test_accuracy"),
                             csv_rows=list(zip(names, res["train_accuracy"],
                                               res["test_accuracy"]))))
  s.plots.append(figure(res, opts["ray_t"]))
  metrics = {"models": list(names), "train_accuracy": res["train_accuracy"],
             "test_accuracy": res["test_accuracy"],
             "regions": [a.as_dict() for a in res["inside"] + res["tests"] + res["rays"]]}
  html.write_page(out_dir, [s], title=f"tfhull: agreement of {len(names)} models", headline=[
      (a.region, f"{100 * a.disagreement.estimate:.1f}%", "disagreement")
      for a in res["inside"][1:] + res["tests"][:1] + res["rays"][-1:]],
                  metrics=metrics, summary=text, intro=(
                      "This page measures how often several models, each trained to classify "
                      "every training image correctly"
                      + ("" if interpolating else " (not all of them reached it: see the models "
                         "table)") + ", disagree on points inside the convex hull "
                      "of the training images (convex combinations of them) and outside it (the "
                      "test images and points along rays beyond them)."), **page)
  return {"headline_text": text, "models": len(names),
          "disagreement": {a.region: a.disagreement.estimate
                           for a in res["inside"] + res["tests"] + res["rays"]},
          "headline": ["models", "disagreement"]}


def run(argv=()):
  common.check_argv(argv)
  opts = settings()
  base = common.study_config()
  cfgs = study_configs(base, opts["models"], opts["seeds"])
  common.quiet_console()
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import models as models_lib  # pylint: disable=import-outside-toplevel
  from tfhull import study  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  data = study.run(study.build(cfgs[0][1]), ["data"], cfgs[0][1])["data"]  # Shared by all.
  check_parts(data.summary["train_counts"], opts["parts"])  # Before any model is trained.
  dones = []
  for i, (name, cfg) in enumerate(cfgs):
    logging.info("=== agreement model %d/%d: %s", i + 1, len(cfgs), name)
    dones.append(study.run(study.build(cfg), ["train", HULL], cfg))
  inputs = {"data": dones[0]["data"], "hull": dones[0][HULL],
            **{f"model{i:02d}": d["train"] for i, d in enumerate(dones)}}
  names = [n for n, _ in cfgs]

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(dones[0]["data"].uri)
    models = [models_lib.load_artifact(d["train"]) for d in dones]
    hull = saved.load_set([dones[0][HULL]])[(SPACE, "test")]
    res = measure(ds, models, hull, opts, seed=base.data.seed)
    return write_page(res, names, opts, out_dir, common.page_meta(inputs, base.run.flags))

  art = common.run_named("agreement", VERSION, "AgreementReport", opts, inputs, build, base.run)
  print(f"\n{art.summary.get('headline_text', '')}\nAgreement report: {art.path('report.html')}")
  return art


def main(argv):
  run(argv)


if __name__ == "__main__":
  common.run_app(main, lambda: common.pipeline_groups(
      "agreement (pipelines.agreement)", [MODELS, SEEDS, MIXTURES, PARTS, BINS, RAY_T],
      common.COMPONENTS))
