"""The saved form of hull measurements: one npz per (space, query split) plus an index.

  save(directory, [(space, split, arrays), ...]); measurements = load(directory)
  measurements[("pixel", "test")]["distance"]
"""

import re
from typing import Mapping, Sequence, Tuple

import numpy as np

INDEX_FILE = "hull.json"


def file_name(space: str, split: str) -> str:
  """hull_<space>__<split>.npz with every non-alphanumeric run replaced by '_'."""
  clean = lambda s: re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")  # pylint: disable=unnecessary-lambda-assignment
  return f"hull_{clean(space)}__{clean(split)}.npz"


def save(directory: str, entries: Sequence[Tuple[str, str, Mapping[str, np.ndarray]]]) -> list:
  """Writes each (space, split, arrays) and the index; returns the index entries."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = []
  for space, split, arrays in entries:
    name = file_name(space, split)
    io.save_npz(io.join(directory, name), arrays)
    index.append({"space": space, "split": split, "file": name})
  io.write_json(io.join(directory, INDEX_FILE), {"entries": index})
  return index


def load(directory: str) -> dict:
  """{(space, split): arrays} of a HullDistances artifact directory."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = io.read_json(io.join(directory, INDEX_FILE))
  return {(e["space"], e["split"]): io.load_npz(io.join(directory, e["file"]))
          for e in index["entries"]}
