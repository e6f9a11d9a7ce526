"""Human names and one order for the spaces, splits, attacks and norms a report shows.

Internal names (`adv_min_pgd_2`, `haar:1:top32`, `layer:features`) stay in metrics.json and the
file names; every table, figure and sentence a reader sees uses these:

  space_name("layer:features", 256)   # "penultimate layer (256-d)"
  split_name("adv_min_pgd_2")         # "minimal PGD (L2)"
  sorted(spaces, key=space_key)       # pixels, Haar levels, layers, logits
"""

import re
from typing import Optional

NORMS = {"2": "L2", "inf": "L∞", "1": "L1"}
ATTACKS = {"pgd": "PGD", "fgm": "FGM", "fgsm": "FGSM", "cw_l2": "C&W", "min_pgd": "minimal PGD",
           "square": "Square", "spsa": "SPSA", "ddn": "DDN", "fab": "FAB"}
_NORM_ORDER = {"inf": 0, "2": 1, "1": 2}
_SPLIT_RE = re.compile(r"^(adv|flip)_(min_pgd|cw_l2|[a-z0-9]+?)_(2|inf|1)$")
_MIN_KEY_RE = re.compile(r"^(min_pgd|cw_l2|[a-z0-9_]+)/(2|inf|1)$")


def norm_name(norm) -> str:
  return NORMS.get(str(norm), f"L{norm}")


def norm_key(norm) -> tuple:
  """L∞ first, then L2, L1, then the rest by name."""
  return (_NORM_ORDER.get(str(norm), 9), str(norm))


def attack_name(attack: str) -> str:
  return ATTACKS.get(str(attack), str(attack))


def _with_dim(name: str, dim: Optional[int]) -> str:
  return f"{name} ({int(dim)}-d)" if dim else name


def space_name(space: str, dim: Optional[int] = None) -> str:
  """"pixel" -> "pixels (64-d)", "haar:2:top32" -> "Haar wavelet level 2, top 32 (32-d)" (the 32 highest-variance
  coefficients),
  "layer:features" -> "penultimate layer (256-d)", "logits" -> "logits (10-d)"."""
  s = str(space)
  if s == "pixel":
    return _with_dim("pixels", dim)
  if s == "logits":
    return _with_dim("logits", dim)
  kind, _, rest = s.partition(":")
  if kind == "haar":
    parts = rest.split(":")
    name = f"Haar wavelet level {parts[0]}" if parts and parts[0] else "Haar wavelet"
    if len(parts) > 1 and parts[1].startswith("top"):
      name += f", top {parts[1][3:]}"
    return _with_dim(name, dim)
  if kind == "layer":
    return _with_dim("penultimate layer" if rest == "features" else f"layer {rest}", dim)
  return _with_dim(s, dim)


def space_key(space: str) -> tuple:
  """Input-side spaces first: pixels, Haar by level, layers, logits, then anything else."""
  s = str(space)
  kind, _, rest = s.partition(":")
  if s == "pixel":
    return (0, 0, s)
  if kind == "haar":
    level = rest.split(":")[0]
    return (1, int(level) if level.isdigit() else 99, s)
  if kind == "layer":
    return (2, 0 if rest == "features" else 1, s)
  if s == "logits":
    return (3, 0, s)
  return (4, 0, s)


def split_name(split: str) -> str:
  """"test" -> "test set", "adv_min_pgd_2" -> "minimal PGD (L2)",
  "flip_min_pgd_inf" -> "flip points of minimal PGD (L∞)", "adv_cw_l2_2" -> "C&W (L2)"."""
  s = str(split)
  if s == "test":
    return "test set"
  if s == "train":
    return "training set"
  m = _SPLIT_RE.match(s)
  if not m:
    return s
  kind, attack, norm = m.groups()
  name = f"{attack_name(attack)} ({norm_name(norm)})"
  return name if kind == "adv" else f"flip points of {name}"


def split_key(split: str) -> tuple:
  """test first, then adversarial examples, then their flip points; L∞ before L2."""
  s = str(split)
  if s == "test":
    return (0, 0, (), s)
  m = _SPLIT_RE.match(s)
  if not m:
    return (3, 0, (), s)
  kind, attack, norm = m.groups()
  return (1 if kind == "adv" else 2, 0 if attack == "min_pgd" else 1, norm_key(norm), s)


def minimal_key_name(key: str) -> str:
  """An attack summary's minimal-perturbation key: "min_pgd/2" -> "minimal PGD (L2)"."""
  m = _MIN_KEY_RE.match(str(key))
  if not m:
    return str(key)
  return f"{attack_name(m.group(1))} ({norm_name(m.group(2))})"


def minimal_key_order(key: str) -> tuple:
  m = _MIN_KEY_RE.match(str(key))
  if not m:
    return (9, (), str(key))
  return (0 if m.group(1) == "min_pgd" else 1, norm_key(m.group(2)), str(key))


def step_name(key: str) -> str:
  """A study node key as shown in the provenance table: "hull/layer:features/adv_min_pgd_2" ->
  "hull: penultimate layer, minimal PGD (L2)"; "features/pixel/attack" -> "features: pixels
  (adversarial points)"; other keys unchanged."""
  parts = str(key).split("/")
  if len(parts) >= 2 and parts[0] in ("hull", "features"):
    shown = [space_name(parts[1])]
    for extra in parts[2:]:
      if extra == "attack":
        shown.append("adversarial points")
      elif extra in ("per_class", "class"):
        shown.append("per-class hulls")
      else:
        shown.append(split_name(extra))
    return f"{parts[0]}: " + ", ".join(shown)
  return str(key)


def step_key(key: str) -> tuple:
  """Within one step, hull and features nodes in the space and query-set order."""
  parts = str(key).split("/")
  if len(parts) >= 2 and parts[0] in ("hull", "features"):
    rest = parts[2:]
    return (space_key(parts[1]), split_key(rest[0]) if rest else (-1,), tuple(rest[1:]))
  return ((), (), ())
