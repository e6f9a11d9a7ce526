"""Studies beyond the linear pipeline: decision boundaries of 2-D data inside and outside the
training hull (`toy2d`)."""
