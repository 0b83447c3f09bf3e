#!/usr/bin/env bash
# Checks that the committed web/dist/ is exactly what build.sh makes from the sources
# (CI runs it): rebuilds into a temporary directory and compares. Needs `npm ci` first.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./build.sh "$tmp" >/dev/null
if ! diff -r "$tmp" dist; then
  echo "web/dist is out of date: run web/build.sh and commit web/dist" >&2
  exit 1
fi
echo "web/dist matches the sources"
