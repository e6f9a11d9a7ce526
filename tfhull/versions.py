r"""Code versions that cannot go stale: one VERSION per library part, checked against its source.

Each part that decides an artifact's content (the solver, the attacks, training, ...) has a
`VERSION = "N"` constant beside its code. A step's cache key includes the versions of the parts it
calls (`step_version`), so changing a part's outputs and bumping its version invalidates exactly
the artifacts built with it. `versions.lock.json` (checked in) records, per part, its version and
a hash of its source's syntax tree (docstrings, comments and formatting left out); the test suite
fails when a part's source changed and its version did not.

  python -m tfhull.versions            # exit 1 and list the parts whose source changed
  python -m tfhull.versions --refresh  # bump every changed part's VERSION, record the new hashes
  python -m tfhull.versions --refresh --nobump   # record hashes only (a refactor that changes
                                                  # no output: caches stay valid)

Reads source files only: importing this module imports neither TensorFlow nor the parts.
"""

import ast
import hashlib
import json
import os
import re
import sys
from typing import Mapping, Sequence

_ROOT = os.path.dirname(os.path.abspath(__file__))
LOCK_FILE = os.path.join(_ROOT, "versions.lock.json")

# Part -> (the file holding its VERSION, the files and packages its hash covers), relative to
# tfhull/. Shared helpers (io, errors, artifacts) decide no content and are left out.
PARTS: Mapping[str, tuple] = {
    "data": ("data/__init__.py", ("data",)),
    "models": ("models/__init__.py", ("models",)),
    "training": ("training.py", ("training.py",)),
    "attacks": ("attacks/__init__.py", ("attacks",)),
    "representations": ("representations/__init__.py", ("representations",)),
    "hull": ("hull/__init__.py", ("hull",)),
    "analysis": ("analysis/__init__.py", ("analysis",)),
    "report": ("report/__init__.py", ("report",)),
    "studies": ("studies/__init__.py", ("studies",)),
}

_VERSION_LINE = re.compile(r'^VERSION = "(\d+)"', re.M)


def _files(part: str) -> list:
  out = []
  for entry in PARTS[part][1]:
    path = os.path.join(_ROOT, entry)
    if os.path.isdir(path):
      out += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py"))
    else:
      out.append(path)
  return out


def version(part: str) -> str:
  """The VERSION constant of `part`, read from its source (no import)."""
  with open(os.path.join(_ROOT, PARTS[part][0]), encoding="utf-8") as f:
    m = _VERSION_LINE.search(f.read())
  if m is None:
    raise RuntimeError(f"tfhull/{PARTS[part][0]} has no VERSION = \"N\" line")
  return m.group(1)


class _Strip(ast.NodeTransformer):
  """Drops docstrings and the VERSION assignment, so neither changes the hash."""

  def _body(self, node):
    self.generic_visit(node)
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str):
      body = body[1:] or [ast.Pass()]
    node.body = [b for b in body if not (
        isinstance(b, ast.Assign) and len(b.targets) == 1
        and isinstance(b.targets[0], ast.Name) and b.targets[0].id == "VERSION")]
    return node

  visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _body


def tree_hash(sources) -> str:
  """sha256 over [(name, Python source)]: syntax trees only, docstrings and VERSION left out."""
  h = hashlib.sha256()
  for name, text in sources:
    tree = _Strip().visit(ast.parse(text))
    h.update(name.encode() + b"\0")
    h.update(ast.dump(tree, include_attributes=False).encode() + b"\0")
  return h.hexdigest()


def source_hash(part: str) -> str:
  """The `tree_hash` of the part's files."""
  sources = []
  for path in _files(part):
    with open(path, encoding="utf-8") as f:
      sources.append((os.path.relpath(path, _ROOT), f.read()))
  return tree_hash(sources)


def current() -> dict:
  """{part: {"version", "source"}} of the tree as it is."""
  return {p: {"version": version(p), "source": source_hash(p)} for p in PARTS}


def read_lock() -> dict:
  with open(LOCK_FILE, encoding="utf-8") as f:
    return json.load(f)


def stale(lock: Mapping = None, now: Mapping = None) -> list:
  """Problems as lines: a part whose source changed under an unchanged version, or a lock that
  does not record the present versions."""
  lock = read_lock() if lock is None else lock
  now = current() if now is None else now
  out = []
  for part, cur in now.items():
    rec = lock.get(part)
    if rec is None:
      out.append(f"{part}: not in {os.path.basename(LOCK_FILE)}")
    elif rec["version"] == cur["version"] and rec["source"] != cur["source"]:
      out.append(f"{part}: source changed but VERSION is still {cur['version']} "
                 f"(tfhull/{PARTS[part][0]})")
    elif rec["version"] != cur["version"]:
      out.append(f"{part}: VERSION {cur['version']} is not recorded (lock has {rec['version']})")
  return out


def refresh(bump: bool = True) -> list:
  """Records the present versions and hashes; with `bump`, first increments the VERSION of every
  part whose source changed under an unchanged version. Returns the bumped parts."""
  try:
    lock = read_lock()
  except FileNotFoundError:
    lock = {}
  bumped = []
  for part in PARTS:
    rec, cur = lock.get(part), {"version": version(part), "source": source_hash(part)}
    if bump and rec and rec["version"] == cur["version"] and rec["source"] != cur["source"]:
      path = os.path.join(_ROOT, PARTS[part][0])
      with open(path, encoding="utf-8") as f:
        text = f.read()
      text = _VERSION_LINE.sub(f'VERSION = "{int(cur["version"]) + 1}"', text, count=1)
      with open(path, "w", encoding="utf-8") as f:
        f.write(text)
      bumped.append(part)
  with open(LOCK_FILE, "w", encoding="utf-8") as f:
    json.dump(current(), f, indent=2, sort_keys=True)
    f.write("\n")
  return bumped


def step_version(step: str, step_version_: str, parts: Sequence[str]) -> str:
  """A step's cache-key version: its own version and those of the parts it calls,
  e.g. "hull=3;hull:5" ("step=V;part:V,...")."""
  return f"{step}={step_version_};" + ",".join(f"{p}:{version(p)}" for p in sorted(parts))


def main(argv: Sequence[str]) -> int:
  if "--refresh" in argv:
    bumped = refresh(bump="--nobump" not in argv)
    print("bumped: " + (", ".join(bumped) or "none") + f"; wrote {LOCK_FILE}")
    return 0
  problems = stale()
  for p in problems:
    print(p)
  if problems:
    print("fix: python -m tfhull.versions --refresh (bumps the changed parts' VERSION; "
          "--nobump for changes that alter no output)")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
