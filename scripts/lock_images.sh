#!/usr/bin/env bash
# Refreshes images/locks/*.txt: every package each image installs, pinned (make lock-images).
#
# Resolved by uv from pyproject.toml's extras for the images' platform (Linux x86_64, Python 3.11; the
# operator's for every platform, it is built for amd64 and arm64), so an image built today and one
# built next month install the same versions. The Dockerfiles install a lock with --no-deps and check
# it with `pip check`; tests/unit/operator/test_operator_images.py keeps each lock in step with the
# extras. deepspeed is left out of the workload locks: the trainer builds it after torch with its ops
# (its own dependencies stay in the lock).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
common=(--python-version 3.11 --quiet --no-header --custom-compile-command "make lock-images")
linux=(--python-platform x86_64-manylinux_2_28 --no-emit-package deepspeed)
lock() {  # lock IMAGE ARGS...: one lock file, with a header naming the image and the extras
  local image=$1; shift
  local out="images/locks/$image.txt"
  "$UV" pip compile pyproject.toml "${common[@]}" "$@" -o "$out.new"
  { echo "# The $image image's packages, pinned: make lock-images (scripts/lock_images.sh) refreshes it."
    echo "# Resolved from pyproject.toml with: $*"
    cat "$out.new"; } > "$out"
  rm "$out.new"
  echo "$out: $(grep -c '==' "$out") packages"
}
lock operator --extra operator --universal
lock labeler --extra cuda --extra stores "${linux[@]}"
lock trainer --extra cuda --extra stores --extra tracking "${linux[@]}"
