"""Sweep grids: the product of axes, as a list of assignments (pure; no flags, no configs).

  expand([("model", ["mlp:width=8", "mlp:width=64"]), ("label_noise", [0.0, 0.5])])
  # [{"model": "mlp:width=8", "label_noise": 0.0}, {"model": "mlp:width=8", "label_noise": 0.5},
  #  {"model": "mlp:width=64", "label_noise": 0.0}, {"model": "mlp:width=64", "label_noise": 0.5}]
"""

import itertools
from typing import Any, Sequence, Tuple


def expand(axes: Sequence[Tuple[str, Sequence[Any]]]) -> list:
  """Every combination of the axes' values, the last axis varying fastest."""
  names = [name for name, _ in axes]
  if len(set(names)) != len(names):
    raise ValueError(f"axes {names} name one axis twice")
  return [dict(zip(names, combo)) for combo in itertools.product(*[v for _, v in axes])]
