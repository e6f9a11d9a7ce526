"""Compositions of components (`python -m pipelines.full`)."""
