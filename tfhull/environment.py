"""The software a result was made with: package versions and the git commit (stdlib only).

  installed("numpy")                 # "2.1.3", or None when not installed
  package_versions(["numpy", "jax"]) # {"numpy": "2.1.3", "jax": None}
  versions(recorded)                 # {"tensorflow": "2.21.0", ..., "git commit": "4c7114a…"}

One module for every place that records versions (artifact metadata, report pages, benchmark
JSON). Versions are read from the installed distributions, never by importing the packages.

`recorded` (an artifact's metadata "versions", from when it was built) wins over what is
installed now; packages that are not installed are left out; the git commit is "unknown"
outside a git checkout.
"""

import importlib.metadata
import os
import subprocess
from typing import Mapping, Optional, Sequence

# Distribution name -> the name the report shows.
PACKAGES = {"tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy", "scipy": "scipy",
            "scikit-learn": "scikit-learn", "cleverhans": "cleverhans",
            "tensorflow-datasets": "tensorflow-datasets", "matplotlib": "matplotlib",
            "absl-py": "absl-py", "tfhull": "tfhull"}
GIT_COMMIT = "git commit"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def installed(distribution: str) -> Optional[str]:
  """The installed version of `distribution`, None when it is not installed."""
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def package_versions(distributions: Sequence[str]) -> dict:
  """{distribution: version or None} for each of `distributions`."""
  return {d: installed(d) for d in distributions}


def git_commit(root: str = _ROOT) -> str:
  """HEAD of the checkout tfhull runs from, " (modified)" when tracked files differ from it;
  "unknown" without git or outside a checkout."""
  def git(*args):
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
  try:
    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return f"{commit} (modified)" if dirty else commit or "unknown"


def versions(recorded: Optional[Mapping[str, str]] = None) -> dict:
  """{shown name: version} of PACKAGES that are installed, then `recorded` (wins), then the git
  commit."""
  out = {}
  for dist, shown in PACKAGES.items():
    v = installed(dist)
    if v is not None:
      out[shown] = v
  out.update({str(k): str(v) for k, v in (recorded or {}).items()})
  out[GIT_COMMIT] = git_commit()
  return out
