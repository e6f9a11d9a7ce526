"""The study's boundary geometry (docs/geometry.md): closest flip points, class-hull distances,
scope, morphing and ambiguity, from the artifacts' arrays (what the analyze step adds).

  out, arrays = analyze_geometry(ds, model, measured, records, spaces, GeometryConfig())
"""

import dataclasses
import time
from typing import Mapping, Optional

from absl import logging
import numpy as np

from tfhull import models
from tfhull.analysis import boundary
from tfhull.analysis import class_hulls
from tfhull.analysis import morph as morph_lib
from tfhull.analysis import scope as scope_lib
from tfhull.analysis.geometry import quantiles
from tfhull.analysis.linear_head import head_of
from tfhull.analysis.linear_head import margins


@dataclasses.dataclass(frozen=True)
class GeometryConfig:
  """What `analyze_geometry` computes and on how many samples."""
  flip_samples: int = 100     # attacked test samples given a closest-flip search (0: none).
  flip_iterations: int = 10   # linearization steps per start.
  morph_pairs: int = 4        # segments per kind (train/test x same/different class; 0: none).
  morph_steps: int = 11       # points per segment.
  ambiguity_rel: float = 0.05  # delta = this x the median top-two logit gap on the test set.
  seed: int = 0


def _by_source(records: dict, attack: str, norm: str, key: str, ok_key: str):
  """{source index: value} of one attack's rows where `ok_key` holds."""
  if ok_key not in records:
    return {}
  rows = (records["attack"] == attack) & (records["norm"] == norm) & records[ok_key]
  return dict(zip(records["source_index"][rows].tolist(), list(records[key][rows])))


def closest_flips(ds, model, records: dict, cfg: GeometryConfig):
  """Input-space closest flip points for up to cfg.flip_samples samples that CW-L2 or minimal PGD
  (L2) flipped, started from x, the CW-L2 example and the minimal-PGD flip point; with the
  segment-bisection and CW distances of the same samples."""
  cw_adv = _by_source(records, "cw_l2", "2", "x_adv", "success")
  cw_l2 = _by_source(records, "cw_l2", "2", "l2", "success")
  flip_pgd = _by_source(records, "min_pgd", "2", "flip_point", "flip_found")
  d_pgd = _by_source(records, "min_pgd", "2", "flip_distance", "flip_found")
  d_cw = _by_source(records, "cw_l2", "2", "flip_distance", "flip_found")
  src = np.array(sorted(set(cw_adv) | set(flip_pgd)), np.int64)[:cfg.flip_samples]
  if not len(src):
    return None, {}
  x = ds.x_test[src]
  starts = [np.stack([cw_adv.get(int(i), x[k]) for k, i in enumerate(src)]),
            np.stack([flip_pgd.get(int(i), x[k]) for k, i in enumerate(src)])]
  res = boundary.input_flip_points(model, x, starts=starts, max_iter=cfg.flip_iterations)
  get = lambda d: np.array([float(d.get(int(i), np.nan)) for i in src])  # pylint: disable=unnecessary-lambda-assignment
  bis_pgd, bis_cw, cw = get(d_pgd), get(d_cw), get(cw_l2)
  ref = np.fmin(bis_pgd, bis_cw)
  both = res.found & np.isfinite(ref)
  out = {"samples": int(len(src)), "found": int(res.found.sum()),
         "iterations": cfg.flip_iterations, "starts": ["x", "cw_l2", "min_pgd_2 flip point"],
         "closest": quantiles(res.distance), "bisection_min_pgd": quantiles(bis_pgd),
         "bisection_cw": quantiles(bis_cw), "cw_l2": quantiles(cw),
         "fraction_closer_than_bisection": float(np.mean(res.distance[both] < ref[both]))
                                           if both.any() else None,
         "median_ratio_to_bisection": float(np.median(res.distance[both] / ref[both]))
                                      if both.any() else None,
         "mean_ratio_to_bisection": float(np.mean(res.distance[both] / ref[both]))
                                    if both.any() else None,
         "best_start": {name: int(np.sum(res.start == k)) for k, name in
                        enumerate(["x", "cw_l2", "min_pgd_2 flip point"])}}
  arrays = {"flip_source": src, "flip_closest": res.distance, "flip_bisection_pgd": bis_pgd,
            "flip_bisection_cw": bis_cw, "flip_cw_l2": cw}
  return out, arrays


def head_geometry(model, train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray,
                  samples: int):
  """Exact closest tie points in the linear head's feature space for up to `samples` test
  features, and the margin of every training feature in its own class's region."""
  try:
    w, b = head_of(model)
  except (ValueError, TypeError):
    return None, {}
  if w.shape[0] != train_f.shape[1]:
    return None, {}
  lin = boundary.linear_flip_points(test_f[:samples], w, b)
  m = margins(train_f, w, b, np.asarray(train_y))
  scale = np.linalg.norm(w[:, :, None] - w[:, None, :], axis=0).max()
  second = np.sort(lin.distance, 1)[:, 2] if lin.distance.shape[1] > 2 else lin.closest
  out = {"samples": int(len(lin.predicted)), "closest": quantiles(lin.closest),
         "second_closest": quantiles(second),
         "closed_form_fraction": float(np.mean(lin.closed_form[lin.distance > 0])),
         "max_relative_gap": float(np.max(np.where(
             np.isfinite(lin.distance) & (lin.distance > 0),
             (lin.distance - lin.lower_bound) / np.maximum(lin.distance, 1e-300), 0.0))),
         "train_margin": quantiles(m),
         "train_margin_over_max_facet_norm": quantiles(m / max(scale, 1e-300)),
         "fraction_train_margin_positive": float(np.mean(m > 0)),
         "caveat": "every training feature with a positive margin puts its class hull inside its "
                   "region (an affine margin is smallest at a vertex): automatic once training "
                   "accuracy is 100%"}
  return out, {"head_flip_closest": lin.closest, "head_flip_distance": lin.distance,
               "head_train_margin": m}


def analyze_geometry(ds, model, measured: Mapping, records: dict, spaces: Mapping,
                     cfg: Optional[GeometryConfig] = None):
  """(JSON-ready summary, arrays for analysis.npz) of the study's boundary geometry.

  Args:
    ds: the `tfhull.data.Dataset`; model: the trained Keras model (logits).
    measured: {(space, split): hull arrays} (`tfhull.hull.saved.load_set`).
    records: the attack artifact's `adversarial.npz` arrays.
    spaces: {space: {"train": (n, d), "test": (q, d)}} features of the spaces measured.
    cfg: `GeometryConfig`.
  """
  cfg = cfg or GeometryConfig()
  out, arrays, seconds = {}, {}, {}
  start = time.process_time()
  out["closest_flip"], a = closest_flips(ds, model, records, cfg) if cfg.flip_samples else (
      None, {})
  arrays.update(a)
  seconds["closest_flip"] = time.process_time() - start
  feats = spaces.get("layer:features")
  out["head"] = None
  if feats is not None:
    start = time.process_time()
    out["head"], a = head_geometry(model, feats["train"], ds.y_train, feats["test"],
                                   cfg.flip_samples or len(feats["test"]))
    arrays.update(a)
    seconds["head"] = time.process_time() - start
  start = time.process_time()
  out["class_hulls"] = {}
  for space, f in spaces.items():
    m = class_hulls.class_hull_distances(f["train"], ds.y_train, num_classes=ds.num_classes)
    out["class_hulls"][space] = m.as_dict()
    arrays[f"class_hull_distance[{space}]"] = m.upper_bound
    arrays[f"class_hull_lower[{space}]"] = m.lower_bound
  seconds["class_hulls"] = time.process_time() - start
  start = time.process_time()
  out["scope"] = {}
  adv = {}
  from tfhull import attacks  # pylint: disable=import-outside-toplevel
  for split, (images, _, _) in attacks.query_sets(records).items():
    adv[split] = images.reshape(len(images), int(np.prod(images.shape[1:])))  # Also 0 rows.
  for (space, split), h in measured.items():
    f = spaces.get(space)
    if f is None:
      continue
    q = f["test"] if split == "test" else (adv.get(split) if space == "pixel" else None)
    if q is None or len(q) != len(h["distance"]) or not len(q) or "alias_of" in h:
      continue
    s = scope_lib.scope(f["train"], q, h["outside"], h["projection"])
    out["scope"].setdefault(space, {})[split] = {
        "queries": int(len(q)), "box": s.fractions(), "pca": s.fractions(pca=True),
        "median_coordinates_outside_box": float(np.median(s.coordinates_outside))}
    if split == "test":
      arrays[f"scope_residual[{space}]"] = s.mean_abs_residual
  seconds["scope"] = time.process_time() - start
  start = time.process_time()
  test_logits = models.predict(model, ds.x_test)
  gap = morph_lib.top_two_gap(test_logits)
  delta = cfg.ambiguity_rel * float(np.median(gap))
  out["morph"] = None
  if cfg.morph_pairs:
    out["morph"], a = _morphs(ds, model, cfg)
    arrays.update(a)
  seconds["morph"] = time.process_time() - start
  rays = None
  pixel = measured.get(("pixel", "test"))
  if pixel is not None and len(pixel["projection"]) == len(ds.x_test):
    q = cfg.flip_samples or len(ds.x_test)
    rays = ray_gaps(model, ds.x_test[:q], pixel["projection"][:q], np.linspace(-1.0, 3.0, 41))
  out["ambiguity"] = {"delta": delta, "delta_rule": f"{cfg.ambiguity_rel} x the median top-two "
                      "logit gap on the test set",
                      "test": morph_lib.ambiguous_fraction(gap, delta),
                      "rays": morph_lib.ambiguous_fraction(rays, delta) if rays is not None
                              else None,
                      "rays_note": "rays from the pixel-space hull projection (t = 0) through the "
                                   "first test samples, t in [-1, 3], 41 points",
                      "morph": morph_lib.ambiguous_fraction(arrays["morph_gap"], delta)
                               if "morph_gap" in arrays else None}
  arrays["test_top_two_gap"] = gap
  out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
  logging.info("analyze: geometry CPU seconds %s", out["seconds"])
  return out, arrays


def ray_gaps(model, x: np.ndarray, projection: np.ndarray, t: np.ndarray) -> np.ndarray:
  """(q, T) top-two logit gaps along the rays x_t = p + t (x - p) (as `tfhull.analysis.rays`)."""
  x = np.asarray(x, np.float32)
  p = np.asarray(projection, np.float32).reshape(x.shape)
  tt = t.reshape((1, -1) + (1,) * (x.ndim - 1)).astype(np.float32)
  pts = (p[:, None] + tt * (x - p)[:, None]).reshape((-1,) + x.shape[1:])
  return morph_lib.top_two_gap(models.predict(model, pts)).reshape(len(x), len(t))


_KINDS = (("train", True), ("train", False), ("test", True), ("test", False))


def _morphs(ds, model, cfg):
  """Morphs of cfg.morph_pairs pairs per kind (train/test x same/different class), pixels."""
  flat_train = ds.x_train.reshape(len(ds.x_train), -1)
  xa, xb, kinds = [], [], []
  for k, (split, same) in enumerate(_KINDS):
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    pr = morph_lib.pairs(y, cfg.morph_pairs, same=same, seed=cfg.seed + k)
    xa.append(x[pr[:, 0]])
    xb.append(x[pr[:, 1]])
    kinds += [k] * len(pr)
  m = morph_lib.morph(model, np.concatenate(xa), np.concatenate(xb), flat_train,
                      steps=cfg.morph_steps)
  kinds = np.array(kinds)
  names = [f"{split}-{split}, {'same' if same else 'different'} class" for split, same in _KINDS]
  out = {"steps": cfg.morph_steps, "kinds": {}, "kind_names": names}  # morph_kind indexes names.
  for k, name in enumerate(names):
    rows = kinds == k
    out["kinds"][name] = {
        "pairs": int(rows.sum()),
        "fraction_label_changes": float(np.mean(m.label_changes[rows])) if rows.any() else None,
        "fraction_label_changes_inside_hull": float(np.mean(m.label_changes_inside[rows]))
                                              if rows.any() else None,
        "fraction_points_inside_hull": float(np.mean(m.inside[rows])) if rows.any() else None}
  return out, {"morph_t": m.t, "morph_labels": m.labels, "morph_margin": m.margin,
               "morph_gap": m.gap, "morph_hull_distance": m.hull_distance,
               "morph_inside": m.inside, "morph_kind": kinds}
