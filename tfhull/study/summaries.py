"""TensorBoard summaries of the attack and hull steps, in each artifact's `tensorboard/` folder
(committed with the artifact, left out of its checksums: `tfhull.artifacts.LOG_DIRS`).

  tensorboard --logdir runs/digits_mlp      # train/<fp>/tensorboard/{train,validation},
                                            # attack/<fp>/tensorboard, hull/<fp>/tensorboard

Attack step: per attack and norm, `attack_success/<attack>_L<norm>` (the success rate among the
initially correct samples) and `robust_accuracy/<attack>_L<norm>` (and `.../worst_case_L<norm>`)
with the step = eps x 1000 (TensorBoard steps are integers: eps 0.03 is step 30, eps 2 is step
2000); histograms of the minimal perturbations' L2 lengths, `minimal_perturbation_l2/<key>`.
Hull step: histograms `d_hull/<space>/<split>`, `d_nn/...`, `d_hull_over_d_nn/...` (and the
per-class distances) and the scalar `fraction_outside/<space>/<split>`, all at step 0.
"""

import re

import numpy as np

DIR = "tensorboard"
EPS_SCALE = 1000


def _tag(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", str(text))


def eps_step(eps) -> int:
  return int(round(float(eps) * EPS_SCALE))


def _writer(out_dir: str):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  return tf, tf.summary.create_file_writer(io.join(out_dir, DIR))


def write_attack(out_dir: str, metrics: dict, records: dict) -> None:
  """The attack step's summaries from its metrics (success_rate, robust_accuracy,
  worst_case_robust_accuracy: {attack: {norm: {eps: value}}}) and records."""
  tf, writer = _writer(out_dir)
  with writer.as_default():
    for what, by_attack in (("attack_success", metrics.get("success_rate") or {}),
                            ("robust_accuracy", metrics.get("robust_accuracy") or {})):
      for attack, by_norm in sorted(by_attack.items()):
        for norm, by_eps in sorted(by_norm.items()):
          for eps, value in by_eps.items():
            if value is not None:
              tf.summary.scalar(_tag(f"{what}/{attack}_L{norm}"), float(value),
                                step=eps_step(eps),
                                description=f"{what} of {attack} (L{norm}); step = eps x "
                                f"{EPS_SCALE}")
    for norm, by_eps in sorted((metrics.get("worst_case_robust_accuracy") or {}).items()):
      for eps, value in by_eps.items():
        tf.summary.scalar(_tag(f"robust_accuracy/worst_case_L{norm}"), float(value),
                          step=eps_step(eps),
                          description=f"point-wise worst case over the attacks; step = eps x "
                          f"{EPS_SCALE}")
    if records and "l2" in records and "success" in records:
      for attack, norm in sorted(set(zip(np.asarray(records["attack"]).tolist(),
                                         np.asarray(records["norm"]).tolist()))):
        rows = ((np.asarray(records["attack"]) == attack) & (np.asarray(records["norm"]) == norm)
                & np.asarray(records["success"], bool))
        l2 = np.asarray(records["l2"], np.float64)[rows]
        l2 = l2[np.isfinite(l2)]
        if l2.size and attack in ("min_pgd", "cw_l2"):
          tf.summary.histogram(_tag(f"minimal_perturbation_l2/{attack}_L{norm}"), l2, step=0)
  writer.close()


def write_hull(out_dir: str, space: str, split: str, arrays: dict) -> None:
  """One hull node's summaries from its saved arrays."""
  tf, writer = _writer(out_dir)
  where = f"{_tag(space)}/{_tag(split)}"
  with writer.as_default():
    d = arrays.get("distance")
    nn = arrays.get("nearest_distance")
    for name, key in (("d_hull", "distance"), ("d_nn", "nearest_distance"),
                      ("d_own_class_hull", "own_class_distance"),
                      ("d_nearest_other_class_hull", "nearest_other_class_distance")):
      values = arrays.get(key)
      if values is not None and np.size(values):
        values = np.asarray(values, np.float64).ravel()
        tf.summary.histogram(f"{name}/{where}", values[np.isfinite(values)], step=0)
    if d is not None and nn is not None and np.size(d) == np.size(nn) and np.size(d):
      d, nn = np.asarray(d, np.float64).ravel(), np.asarray(nn, np.float64).ravel()
      ok = nn > 0
      tf.summary.histogram(f"d_hull_over_d_nn/{where}", d[ok] / nn[ok], step=0)
    if arrays.get("outside") is not None and np.size(arrays["outside"]):
      tf.summary.scalar(f"fraction_outside/{where}",
                        float(np.mean(np.asarray(arrays["outside"], bool))), step=0)
  writer.close()
