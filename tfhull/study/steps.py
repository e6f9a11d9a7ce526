"""What each node of the study graph computes: input artifacts + its config -> a payload.

Every builder has the signature `build(node, cfg, inputs, out_dir[, work_dir]) -> summary`:
`node` is the `graph.Node`, `cfg` the `StudyConfig`, `inputs` {input name: Artifact}; it writes
the payload into `out_dir` and returns the JSON summary recorded in `metadata.json`.
"""

import fnmatch
import sys
from typing import Mapping

from absl import logging
import numpy as np

from tfhull.errors import UserError
from tfhull.study import summaries

_STRATEGIES = {}


def strategy(run_cfg):
  """The tf.distribute strategy of `run_cfg` (built once per process and setting)."""
  key = (run_cfg.strategy, run_cfg.tpu)
  if key not in _STRATEGIES:
    from tfhull import distribute  # pylint: disable=import-outside-toplevel
    _STRATEGIES[key] = distribute.get_strategy(run_cfg.strategy, run_cfg.tpu)
  return _STRATEGIES[key]


def replicas(run_cfg) -> int:
  """Replicas in sync of the configured strategy (1 without building one for `default`)."""
  return 1 if run_cfg.strategy == "default" else int(strategy(run_cfg).num_replicas_in_sync)


def dtypes(model) -> dict:
  """What a measurement step records about its model: the dtype it computed in (float32: models
  are loaded at float32 whatever they were trained with) and the training policy."""
  from tfhull import models  # pylint: disable=import-outside-toplevel
  return {"compute_dtype": models.compute_dtype(model),
          "trained_dtype_policy": models.trained_dtype_policy(model)}


def data(node, cfg, inputs, out_dir) -> dict:
  del node, inputs
  import tfhull.data  # pylint: disable=import-outside-toplevel
  d = cfg.data
  ds = tfhull.data.prepare(d.dataset, data_dir=d.data_dir, download=d.download,
                           train_size=d.train_size, test_size=d.test_size,
                           classes=list(d.classes), label_noise=d.label_noise,
                           corruption=d.corruption, seed=d.seed)
  return tfhull.data.save(ds, out_dir)


def train(node, cfg, inputs, out_dir, work_dir) -> dict:
  del node
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull import training  # pylint: disable=import-outside-toplevel
  ds = tfhull.data.load(inputs["data"].uri)
  if models.file_path(cfg.train.model) is not None:
    return _imported_model(cfg, ds, out_dir)
  result = training.train(cfg.train.model, ds, cfg.train.training, strategy=strategy(cfg.run),
                          work_dir=work_dir, tensorboard_dir=io.join(out_dir, "tensorboard"),
                          verbose=1 if sys.stdout.isatty() else 2,
                          steps_per_execution=cfg.train.steps_per_execution)
  models.save(result.model, io.join(out_dir, models.MODEL_FILE))
  io.write_json(io.join(out_dir, "history.json"), result.history)
  logging.info("train: %s", {k: result.metrics[k] for k in ("train_accuracy", "test_accuracy",
                                                              "params", "epochs_run")})
  return {**result.metrics, "model_spec": cfg.train.model, "input_shape": list(ds.input_shape),
          "num_classes": ds.num_classes, "n_train": len(ds.x_train),
          "headline": ["params", "params_per_example", "train_accuracy", "test_accuracy",
                       "epochs_run"]}


def _imported_model(cfg, ds, out_dir) -> dict:
  """The train step for `--model=keras:PATH` or `savedmodel:PATH`: no training; the model
  (safe_mode=True; a SavedModel unpickles nothing), checked against the data, evaluated and copied
  into the Model artifact (`model.keras` or the `savedmodel/` directory), with its sha256."""
  import os  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull import training  # pylint: disable=import-outside-toplevel
  start = time.time()
  spec, strat = cfg.train.model, strategy(cfg.run)
  path = models.file_path(spec)
  sha = models.spec_sha256(spec)
  model = models.load_file(spec, ds.input_shape, ds.num_classes, strategy=strat)
  fmt = models.file_kind(spec)
  if fmt == "savedmodel":  # The directory, file by file; loaded from there by `load_artifact`.
    from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
    for name in savedmodel.files(path):
      io.gfile.makedirs(io.join(out_dir, savedmodel.DIR, os.path.dirname(name)))
      io.write_bytes(io.join(out_dir, savedmodel.DIR, name), io.read_bytes(io.join(path, name)))
  else:
    io.write_bytes(io.join(out_dir, models.MODEL_FILE), io.read_bytes(path))
  io.write_json(io.join(out_dir, "history.json"), {})
  kw = dict(batch_size=cfg.train.training.batch_size, strategy=strat)
  train_m = training.evaluate(model, ds.x_train, ds.y_train, **kw)
  test_m = training.evaluate(model, ds.x_test, ds.y_test, **kw)
  rep = models.parameter_report(model, len(ds.x_train), ds.num_classes)
  logging.info("train: imported %s (sha256 %s): train accuracy %.4f, test accuracy %.4f",
               path, sha[:12], train_m["accuracy"], test_m["accuracy"])
  return {"model": model.name, "imported_from": path, "model_sha256": sha, "model_format": fmt,
          "params": rep.params, "params_per_example": rep.ratio_to_samples,
          "params_per_constraint": rep.ratio_to_constraints,
          "train_accuracy": train_m["accuracy"], "train_loss": train_m["loss"],
          "test_accuracy": test_m["accuracy"], "test_loss": test_m["loss"],
          "interpolated": train_m["accuracy"] == 1.0, "epochs_run": 0,
          "layers": models.layer_names(model), "train_seconds": round(time.time() - start, 3),
          "model_spec": spec, "input_shape": list(ds.input_shape),
          "num_classes": ds.num_classes, "n_train": len(ds.x_train),
          "headline": ["imported_from", "model_sha256", "params", "train_accuracy",
                       "test_accuracy"]}


def attack(node, cfg, inputs, out_dir) -> dict:
  del node
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import attacks  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  ds = tfhull.data.load(inputs["data"].uri)
  a = cfg.attack
  a.attack.check(ds.input_dim)
  strat = strategy(cfg.run)
  model = models.load_artifact(inputs["train"], strategy=strat)
  idx = np.arange(len(ds.x_test))
  if a.size and a.size < len(idx):
    idx = np.sort(np.random.default_rng(a.attack.seed).choice(idx, a.size, replace=False))
  result = attacks.run_suite(model, ds.x_test[idx], ds.y_test[idx], a.attack, strategy=strat,
                             source_index=idx, progress=True)
  io.save_npz(io.join(out_dir, "adversarial.npz"), result.records)
  summaries.write_attack(out_dir, result.metrics, result.records)
  worst = result.metrics["worst_case_robust_accuracy"]
  minimal = result.metrics["minimal_perturbation"]
  return {**result.metrics, **dtypes(model),
          "worst_case": {f"L{n}": ", ".join(f"{e}: {v:.3f}" for e, v in d.items())
                         for n, d in worst.items()},
          "median_minimal_l2": {k: v["l2"]["median"] for k, v in minimal.items()},
          "headline": ["samples", "clean_accuracy", "worst_case", "median_minimal_l2",
                       *(["minimal_not_found"] if "minimal_not_found" in result.metrics else []),
                       "warnings"]}


def features(node, cfg, inputs, out_dir) -> dict:
  """One space: the data's train and test splits (source "data"), or the attack step's minimal
  adversarial examples and flip points (source "attack")."""
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import attacks  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  spec, source = node.params["space"], node.params["source"]
  ds = tfhull.data.load(inputs["data"].uri)
  rep = representations.parse_representation(spec)
  model = None
  if "train" in inputs:
    model = models.load_artifact(inputs["train"], strategy=strategy(cfg.run))
  if source == "data":
    space = representations.compute(rep, ds, model, batch_size=cfg.features.batch_size,
                                    strategy=strategy(cfg.run) if model else None)
    labels = representations.labels_of(ds)
  else:
    records = io.load_npz(inputs["attack"].path("adversarial.npz"))
    extra, labels, empty = {"_probe": ds.x_test[:1]}, {}, []
    for split, (images, y, src) in attacks.query_sets(records).items():
      if len(images):
        extra[split] = images
      else:
        empty.append(split)  # No attack succeeded: an empty split of the right width.
      labels[split], labels[f"{split}_source"] = y, src
    space = representations.compute(rep, ds, model, extra=extra, only_extra=True,
                                     batch_size=cfg.features.batch_size,
                                     strategy=strategy(cfg.run) if model else None)
    splits = dict(space.splits)
    dim = splits.pop("_probe").shape[1]
    splits.update({s: np.zeros((0, dim), np.float32) for s in empty})
    space = representations.Space(space.spec, splits, space.info)
  summary = representations.save(out_dir, [space], labels, ds.num_classes)
  if model is not None:
    summary.update(dtypes(model))
  summary["headline"] = ["spaces", "rows"]
  return summary


def select_splits(patterns, available, spec) -> list:
  """The available splits matching the shell patterns, in pattern order; a literal that matches
  nothing is an error, a pattern that matches nothing is skipped."""
  chosen = []
  for pattern in patterns:
    hits = [s for s in available if fnmatch.fnmatchcase(s, pattern)]
    if not hits and not any(c in pattern for c in "*?["):
      raise UserError(f"space {spec} has no split {pattern!r} (it has {', '.join(available)}); "
                      "fix --hull_query_splits")
    chosen += [h for h in hits if h not in chosen]
  return chosen


def _split(inputs, name, spec, split):
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  feats = representations.load(inputs[name].uri, [spec])
  return feats.spaces[spec].splits.get(split), feats.labels.get(split), feats


def hull(node, cfg, inputs, out_dir) -> dict:
  """One (space, query split, kind): distances to the training hull ("global") or to every
  class's hull ("per_class"); a split within `alias_tol` of another's is aliased, not solved."""
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  spec, split, kind = node.params["space"], node.params["split"], node.params["kind"]
  points, point_labels, base = _split(inputs, "points", spec, "train")
  queries, query_labels, _ = _split(inputs, "queries", spec, split)
  if queries is None:
    raise UserError(f"space {spec} has no split {split}; fix --hull_query_splits")
  if "alias" in inputs:
    alias, deviation = _alias(inputs, spec, split, queries, node.params["alias_tol"])
    if alias is not None:
      logging.info("hull [%s, %s]: aliased to %s (max deviation %.3g of the perturbation)",
                   spec, split, alias["alias_of"], alias["max_relative_deviation"])
      saved.save_alias(out_dir, spec, split, alias, deviation)
      return {**inputs["alias"].summary, "split": split, **alias,
              "headline": ["alias_of", "max_relative_deviation"]}
  if not len(queries):
    logging.warning("hull: split %s of space %s is empty (no attack succeeded?)", split, spec)
    saved.save_empty(out_dir, spec, split)
    return {"space": spec, "split": split, "kind": kind, "queries": 0, "headline": ["queries"]}
  strat = strategy(cfg.run) if cfg.run.strategy != "default" else None
  solver = cfg.hull.solver()
  if kind == "per_class":
    arrays, summary = saved.measure_classes(points, point_labels, queries, query_labels,
                                            base.num_classes, solver, strat,
                                            label=f"{spec}, {split}, per class")
  else:
    arrays, summary = saved.measure(points, point_labels, queries, query_labels,
                                    base.num_classes, False, solver, strat,
                                    label=f"{spec}, {split}")
  saved.save(out_dir, [(spec, split, arrays)], kind=kind)
  summaries.write_hull(out_dir, spec, split, arrays)
  summary.update(space=spec, split=split, kind=kind)
  if kind == "global":
    summary["median_distance"] = float(np.median(arrays["distance"]))
  summary["headline"] = [k for k in ("fraction_outside_certified", "fraction_inside",
                                     "median_own_class_distance") if k in summary]
  return summary


def _alias(inputs, spec, split, queries, tol):
  """({"alias_of", "max_deviation", "max_relative_deviation"}, per-row deviation (q,)) when
  `queries` equal the alias target's row by row (same source samples) within `tol` x each row's
  perturbation in this space; else (None, None)."""
  target = inputs["alias"].summary["split"]
  other, _, feats = _split(inputs, "queries", spec, target)
  src = feats.labels.get(f"{split}_source")
  other_src = feats.labels.get(f"{target}_source")
  if src is None or other_src is None or not np.array_equal(src, other_src) or not len(src):
    return None, None
  clean, _, _ = _split(inputs, "points", spec, "test")
  dev = np.linalg.norm(queries.astype(np.float64) - other, axis=1)
  pert = np.linalg.norm(other.astype(np.float64) - clean[src], axis=1)
  rel = dev / np.maximum(pert, 1e-30)
  if float(rel.max()) > tol:
    return None, None
  return {"alias_of": target, "max_deviation": float(dev.max()),
          "max_relative_deviation": float(rel.max())}, dev


def hull_inputs(inputs: Mapping) -> dict:
  """The hull artifacts among a node's inputs ({name: Artifact} whose name starts "hull/")."""
  return {k: v for k, v in inputs.items() if k.startswith("hull/")}


def analyze(node, cfg, inputs, out_dir) -> dict:
  del node
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import analysis  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  ds = tfhull.data.load(inputs["data"].uri)
  model = models.load_artifact(inputs["train"], strategy=strategy(cfg.run))
  measured = saved.load_set(hull_inputs(inputs).values())
  feature_space = None
  if "features/layer:features" in inputs and ("layer:features", "test") in measured:
    feature_space = representations.load(inputs["features/layer:features"].uri).spaces[
        "layer:features"]
  a = cfg.analyze
  out = analysis.analyze_study(
      ds, model, measured, representations.labels_of(ds)["train"],
      io.load_npz(inputs["attack"].path("adversarial.npz")), feature_space,
      ray_t_min=a.ray_t_min, ray_t_max=a.ray_t_max, ray_points=a.ray_points,
      ray_samples=a.ray_samples)
  arrays = out.pop("arrays")
  out["shift"] = _shift(cfg, ds, model, measured, feature_space)
  out["geometry"], geo = _geometry(ds, model, measured, inputs, a)
  arrays.update(geo)
  io.save_npz(io.join(out_dir, "analysis.npz"), arrays)
  io.write_json(io.join(out_dir, "analysis.json"), out)
  return {**out["headline"], **dtypes(model), "headline": list(out["headline"])}


def _shift(cfg, ds, model, measured, feature_space):
  """The hull as a detector of shifted inputs (`tfhull.analysis.shift`); None without sets."""
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.analysis import shift  # pylint: disable=import-outside-toplevel
  a = cfg.analyze
  sets = shift.shifted_sets(ds.x_test, a.shift_corruptions,
                            held_out=shift.held_out_inputs(cfg.data), samples=a.shift_samples,
                            seed=cfg.data.seed)
  if not sets:
    return None
  strat = strategy(cfg.run) if cfg.run.strategy != "default" else None
  return shift.shift_study(ds, model, measured, representations.labels_of(ds)["train"],
                           feature_space, sets, cfg.hull.solver(), strategy=strat)
def _geometry(ds, model, measured, inputs, a):
  """The boundary geometry (`tfhull.analysis.boundary_study`) of the spaces whose features are
  among the inputs (`features/<space>`, data source): (summary, arrays "geo_..." for the npz)."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.analysis import boundary_study  # pylint: disable=import-outside-toplevel
  spaces = {}
  for name, art in inputs.items():
    if name.startswith("features/") and name.count("/") == 1:
      for spec, space in representations.load(art.uri).spaces.items():
        if "train" in space.splits and "test" in space.splits:
          spaces[spec] = {"train": space.splits["train"], "test": space.splits["test"]}
  out, arrays = boundary_study.analyze_geometry(
      ds, model, measured, io.load_npz(inputs["attack"].path("adversarial.npz")), spaces,
      a.geometry())
  return out, {f"geo_{k}": v for k, v in arrays.items()}


def hull_summaries(inputs: Mapping) -> dict:
  """(space, split) -> summary of the global-kind hull artifacts among `inputs`."""
  return {(a.summary["space"], a.summary["split"]): a.summary
          for a in hull_inputs(inputs).values() if a.summary.get("kind", "global") == "global"}


def report_inputs(inputs: Mapping, cfg):
  """The study report's `ReportInputs` from the artifacts (all loaded and checked)."""
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import analysis  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import report as report_lib  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  from tfhull import environment  # pylint: disable=import-outside-toplevel
  from tfhull.report import study as study_report  # pylint: disable=import-outside-toplevel
  ds = tfhull.data.load(inputs["data"].uri)
  dims = {a.summary["space"]: int(a.summary["dim"]) for a in hull_inputs(inputs).values()
          if a.summary.get("dim") and a.summary.get("space")}
  an = io.read_json(inputs["analyze"].path("analysis.json"))
  an_arrays = io.load_npz(inputs["analyze"].path("analysis.npz"))
  measured = saved.load_set(hull_inputs(inputs).values())
  history = io.read_json(inputs["train"].path("history.json"))
  names = list(ds.class_names)
  metrics = study_report.study_metrics(inputs["train"].summary, inputs["attack"].summary,
                                       hull_summaries(inputs), an)
  views = []
  for (space, split), a in measured.items():
    labels = a.get("query_labels")
    views.append(report_lib.HullView(
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
    for i in np.argsort(pixel["distance"])[::-1][:cfg.report.image_rows]:
      order = np.argsort(-pixel["weights"][i])
      support = [(ds.x_train[pixel["support"][i, j]], float(pixel["weights"][i, j]),
                  names[ds.y_train[pixel["support"][i, j]]])
                 for j in order[:8] if pixel["support"][i, j] >= 0 and pixel["weights"][i, j] > 0]
      image_rows.append(report_lib.ImageRow(
          test=ds.x_test[i], projection=pixel["projection"][i].reshape(shape),
          label=names[ds.y_test[i]], distance=float(pixel["distance"][i]), support=support))
  adversarial = [{"norm": norm, "perturbation": an_arrays[f"adv_{norm}_perturbation"],
                  "d_hull": an_arrays[f"adv_{norm}_d_hull"], "d_nn": an_arrays[f"adv_{norm}_d_nn"],
                  "spearman_d_hull": (an.get("adversarial") or {}).get(norm, {}).get(
                      "spearman_d_hull")}
                 for norm in ("inf", "2") if f"adv_{norm}_perturbation" in an_arrays]
  rays = None
  if "ray_t" in an_arrays:
    rays = {"t": an_arrays["ray_t"], "margin": an_arrays["ray_margin"],
            "crossing": an_arrays["ray_crossing"], "categories": an["rays"]["categories"]}
    if "ray_examples" in an_arrays:
      rays["examples"] = an_arrays["ray_examples"]
  head = None
  if "class_min_margin" in an_arrays:
    head = {"class_min_margin": an_arrays["class_min_margin"],
            "boundary_distance": an_arrays["boundary_distance"],
            "hull_distance": an_arrays["head_hull_distance"]}
  attack_summary = inputs["attack"].summary
  return report_lib.ReportInputs(
      title=cfg.report.title or f"tfhull: {inputs['data'].summary.get('source')} with "
                                f"{inputs['train'].summary.get('model_spec')}",
      provenance=provenance(inputs), config=cfg.run.flags,
      versions=environment.versions(inputs["train"].metadata.get("versions", {})),
      headline=study_report.headline_rows(metrics, dims),
      summary=study_report.summary_sentence(metrics, dims), space_dims=dims,
      metrics=metrics, history=history,
      hull=views, image_rows=image_rows, adversarial=adversarial,
      robustness={"robust_accuracy": attack_summary["robust_accuracy"],
                  "worst_case_robust_accuracy": attack_summary["worst_case_robust_accuracy"],
                  "clean_accuracy": attack_summary["clean_accuracy"]},
      rays=rays, linear_head=head, class_names=tuple(names),
      geometry=_geometry_view(an, an_arrays, names, ds))


def _geometry_view(an: dict, an_arrays: Mapping, names: list, ds):
  """The report's boundary-geometry input (`tfhull.report.geometry`); None without one."""
  if not an.get("geometry"):
    return None
  return {"summary": an["geometry"],
          "arrays": {k[len("geo_"):]: v for k, v in an_arrays.items() if k.startswith("geo_")},
          "class_names": names,
          "image_shape": tuple(ds.input_shape) if len(ds.input_shape) == 3 else None}


def provenance(arts: Mapping) -> list:
  """[{step, type, uri, fingerprint, created}] of the artifacts a page shows."""
  return [{"step": name, "type": a.type, "uri": a.uri, "fingerprint": a.fingerprint,
           "created": a.metadata.get("created")} for name, a in arts.items()]


def report_sections(rin, inputs: Mapping) -> list:
  """The study report's sections: the library's, then the headline intervals
  (`tfhull.study.seeds`, bootstrap over the test samples) and shift detection; puts the findings
  paragraph (`tfhull.report.findings`) before the summary sentence."""
  from tfhull.report import html  # pylint: disable=import-outside-toplevel
  from tfhull.report import intervals as intervals_report  # pylint: disable=import-outside-toplevel
  from tfhull.study import seeds  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull.report import findings  # pylint: disable=import-outside-toplevel
  from tfhull.report import shift as shift_report  # pylint: disable=import-outside-toplevel
  iv = seeds.headline_intervals([inputs])
  rin.metrics["intervals"] = iv  # metrics.json: the numbers behind the section.
  an = io.read_json(inputs["analyze"].path("analysis.json"))
  sh = an.get("shift")
  rin.metrics["shift_detection"] = sh
  rin.summary = " ".join(x for x in (findings.findings(
      iv, error_prediction=an.get("error_prediction"), shift=sh, dims=rin.space_dims),
                                     rin.summary) if x)
  return html.build_sections(rin) + [intervals_report.interval_section(iv, rin.space_dims),
                                     shift_report.shift_section(sh, rin.space_dims)]


def report(node, cfg, inputs, out_dir) -> dict:
  del node
  from tfhull import report as report_lib  # pylint: disable=import-outside-toplevel
  rin = report_inputs(inputs, cfg)
  result = report_lib.write_report(rin, out_dir, sections=report_sections(rin, inputs))
  return {"figures": result["figures"], "figure_names": result["figure_names"],
          "skipped": result["skipped"], "headline": ["figures", "skipped"]}
