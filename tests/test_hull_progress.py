"""Progress of long hull solves: batches, passes and per-class phases are shown on stderr (as
tqdm bars on a terminal; without one `console.progress` logs lines, tests/test_cli.py)."""

import numpy as np
import pytest

from tfhull import console
from tfhull import hull


@pytest.fixture(autouse=True)
def terminal(monkeypatch):
  monkeypatch.setattr(console, "on_terminal", lambda: True)


def _problem():
  rng = np.random.default_rng(0)
  points = rng.standard_normal((300, 10))
  labels = np.repeat([0, 1, 2], 100)
  queries = 3 * rng.standard_normal((20, 10))
  return points, labels, queries


def test_progress_shows_batches_and_passes(capsys):
  points, _, queries = _problem()
  hull.project_onto_hull(points, queries, batch_size=8, progress=True)
  err = capsys.readouterr().err
  assert "hull (n=300, d=10)" in err
  assert "batch 3/3" in err and "pass" in err and "unconverged 0" in err


def test_progress_delay_and_off(capsys):
  points, _, queries = _problem()
  hull.project_onto_hull(points, queries, progress=False)
  assert "hull (n=" not in capsys.readouterr().err
  # Default (None): shown only once the solve has run progress_delay_s seconds.
  hull.project_onto_hull(points, queries, progress_delay_s=1e9)
  assert "hull (n=" not in capsys.readouterr().err
  hull.project_onto_hull(points, queries, progress_delay_s=0.0)
  assert "hull (n=300, d=10)" in capsys.readouterr().err


def test_per_class_phase_shows_each_class(capsys):
  points, labels, queries = _problem()
  pc = hull.per_class_distances(points, labels, queries, np.zeros(20, int), progress=True)
  err = capsys.readouterr().err
  # One solve for all (query, class) pairs: one bar, with its batches and passes.
  assert "3 class hulls (n=300, d=10, query x class)" in err
  assert "60/60" in err and "batch 1/1 outside 60 unconverged 0" in err  # 20 queries x 3.
  assert pc.verdict.shape == (20, 3) and pc.converged.all()
