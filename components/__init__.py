"""One absl-flag module per pipeline step: `python -m components.NAME --flagfile=...`."""
