#!/bin/sh
# Download the image's pinned dependencies as wheels into container/wheelhouse, so that
# `docker build --build-arg PIP_OFFLINE=1` installs them with --no-index (no network in the build:
# the containers have neither a route to PyPI nor this machine's CA certificates).
#
#   container/offline/build_wheelhouse.sh   (PYTHON=... picks the pip; default .venv's, else python3)
#
# Wheels are chosen for the image, not the host: CPython 3.11, manylinux x86_64, binary only.
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
REQUIREMENTS="$HERE/requirements.txt"
WHEELHOUSE="$HERE/wheelhouse"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$HERE/../.venv/bin/python" ] && PYTHON="$HERE/../.venv/bin/python"
fi

"$PYTHON" -m pip --version >/dev/null 2>&1 || {
    echo "build_wheelhouse: $PYTHON has no pip; set PYTHON=/path/to/python3 with pip" >&2
    exit 1
}
mkdir -p "$WHEELHOUSE"
# --no-deps: requirements.txt is a full lock, so nothing outside it may sneak in. Its hashes make
# this a hash-checked download: a wheel whose sha256 the lock does not list is refused.
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -r "$REQUIREMENTS" -d "$WHEELHOUSE"
echo "build_wheelhouse: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels in $WHEELHOUSE"
