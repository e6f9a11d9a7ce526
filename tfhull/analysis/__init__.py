"""Geometry analyses over hull measurements, attacks and models (arrays in, dataclasses out)."""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "4"

from tfhull.analysis.adversarial import perturbation_vs_hull
from tfhull.analysis.boundary import input_flip_points
from tfhull.analysis.boundary import linear_flip_points
from tfhull.analysis.class_hulls import class_hull_distances
from tfhull.analysis.class_hulls import hull_pair_distance
from tfhull.analysis.error_prediction import default_k
from tfhull.analysis.error_prediction import ErrorPrediction
from tfhull.analysis.error_prediction import knn_distance
from tfhull.analysis.error_prediction import predict_errors
from tfhull.analysis.geometry import hull_stats
from tfhull.analysis.geometry import HullStats
from tfhull.analysis.geometry import own_class_weight
from tfhull.analysis.linear_head import analyze as linear_head
from tfhull.analysis.linear_head import head_of
from tfhull.analysis.linear_head import LinearHeadStats
from tfhull.analysis.linear_head import margins
from tfhull.analysis.morph import ambiguous_fraction
from tfhull.analysis.morph import top_two_gap
from tfhull.analysis.rays import CATEGORIES as RAY_CATEGORIES
from tfhull.analysis.rays import ray_scan
from tfhull.analysis.rays import RayScan
from tfhull.analysis.study import analyze_study
