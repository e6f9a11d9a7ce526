#!/usr/bin/env bash
# Downloads the wheels that `benchmarks/gpu_check.sh` installs on a GPU machine without network.
#
# The device image (docs: the device tool's README and KINDS.md) has Python 3.12 with jax (CUDA),
# numpy, scipy, absl-py, h5py, ml-dtypes, rich, ... but no keras (nor TensorFlow). This fetches
# keras 3.15.1 and every one of its run-time dependencies (Requires-Dist of keras, optree, rich,
# markdown-it-py), never numpy, jax or scipy: gpu_check.sh installs only the wheels whose
# distribution is missing there, so the machine's own numpy / jax / ml-dtypes stay in charge.
#
# Usage (repo root):  bash benchmarks/fetch_gpu_wheels.sh
#   PYVER=3.11 DEST=/tmp/whl311 bash benchmarks/fetch_gpu_wheels.sh   # e.g. a local rehearsal
# Env: PYVER (default 3.12), DEST (default .whl, git-ignored), PIP (default: python3 -m pip).
set -euo pipefail

PYVER="${PYVER:-3.12}"
DEST="${DEST:-.whl}"
PIP="${PIP:-python3 -m pip}"

# Pinned to the versions the project's own venv runs keras 3.15.1 with.
WHEELS=(
  keras==3.15.1
  namex==0.1.0
  optree==0.20.0
  typing-extensions==4.16.0
  rich==15.0.0
  markdown-it-py==4.3.0
  mdurl==0.1.2
  pygments==2.21.0
  h5py==3.14.0
  ml-dtypes==0.6.0
  packaging==26.4
  absl-py==2.5.1
)

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done

mkdir -p "$DEST"
# shellcheck disable=SC2086
$PIP download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
  --implementation cp "${PLATFORMS[@]}" -d "$DEST" "${WHEELS[@]}"

# One version per distribution (two stop the install): complain if an older download lingers.
dups=$(ls "$DEST"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [[ -n "$dups" ]]; then
  echo "fetch_gpu_wheels: several versions of: $dups in $DEST; remove the stale ones" >&2
  exit 1
fi
echo "fetch_gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels for cp${PYVER/./} in $DEST" \
     "($(du -sh "$DEST" | cut -f1))"
