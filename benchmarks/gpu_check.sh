#!/usr/bin/env bash
# CIFAR-10-scale check of the hull solver on a GPU machine, KERAS_BACKEND=jax, no network.
#
# The machine's Python has jax (CUDA), numpy, scipy, absl-py, ... but no keras and no TensorFlow.
# Beforehand, here: `bash benchmarks/fetch_gpu_wheels.sh` (wheels into .whl/, git-ignored). This
# script installs into $SITE only the wheels whose distribution that Python lacks (so never a
# second numpy, jax or ml-dtypes over the machine's), then runs `python -m benchmarks.gpu_check`
# with the remaining arguments; its JSON goes to $OUT/gpu_check.json when $OUT is set.
#
#   bash benchmarks/gpu_check.sh                 # n = 50,000, d = 3,072, 10,000 queries
#   bash benchmarks/gpu_check.sh --quick         # n = 5,000, d = 784, 512 queries
#   PYTHON=/tmp/venv/bin/python3 bash benchmarks/gpu_check.sh --quick   # another interpreter
# Device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=...).
# Env: PYTHON (default python3), WHEELS (default .whl), SITE (default /tmp/site).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"
SITE="${SITE:-/tmp/site}"

mapfile -t missing < <("$PYTHON" - "$WHEELS" <<'PY'
import glob, importlib.metadata as md, os, sys
wheels = sorted(glob.glob(os.path.join(sys.argv[1], "*.whl")))
if not wheels:
  sys.exit(f"gpu_check.sh: no wheels in {sys.argv[1]}: run benchmarks/fetch_gpu_wheels.sh")
for w in wheels:
  dist = os.path.basename(w).split("-")[0]
  try:
    print(f"gpu_check.sh: keeping installed {dist} {md.version(dist)}", file=sys.stderr)
  except md.PackageNotFoundError:
    print(w)
PY
)
if ((${#missing[@]})); then
  echo "gpu_check.sh: installing into $SITE: ${missing[*]##*/}" >&2
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${missing[@]}"
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
"$PYTHON" -c "import keras, jax; print('gpu_check.sh: keras', keras.__version__, 'backend',
keras.backend.backend(), 'jax', jax.__version__, jax.devices())"
exec "$PYTHON" -m benchmarks.gpu_check "$@"
