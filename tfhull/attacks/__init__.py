"""Adversarial examples, minimal perturbations and closest flip points (cleverhans 4.0.0 + CW-L2).

  from tfhull import attacks
  result = attacks.run_suite(model, x, y, attacks.AttackConfig(attacks=("pgd", "cw_l2"),
                                                               norms=("inf", "2")))
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "3"

from tfhull.attacks.cw import carlini_wagner_l2
from tfhull.attacks.cw import CWResult
from tfhull.attacks.gradient import IterativeConfig
from tfhull.attacks.gradient import make_step
from tfhull.attacks.gradient import NORMS
from tfhull.attacks.gradient import run_batched
from tfhull.attacks.minimal import eps_cap
from tfhull.attacks.minimal import flip_points
from tfhull.attacks.minimal import FlipPoints
from tfhull.attacks.minimal import minimal_eps
from tfhull.attacks.minimal import MinimalResult
from tfhull.attacks.suite import ATTACKS
from tfhull.attacks.suite import AttackConfig
from tfhull.attacks.suite import query_sets
from tfhull.attacks.suite import run_suite
from tfhull.attacks.suite import SuiteResult
from tfhull.attacks.suite import summarize
