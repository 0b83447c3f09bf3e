#!/usr/bin/env bash
# Builds the web UI into dist/ (or the directory given as $1): the HTML and ES modules as
# they are, Tailwind's CSS from src/styles.css, and uPlot from node_modules. The node
# embeds dist/ in its binary, and dist/ is committed so that a clone builds without Node.
# Needs `npm ci` in this directory first.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-dist}"
if [ ! -x node_modules/.bin/tailwindcss ] || [ ! -f node_modules/uplot/dist/uPlot.iife.min.js ]; then
  echo "web/build.sh: run 'npm ci' in web/ first" >&2
  exit 1
fi
mkdir -p "$out"
# Only what the build produces lives in dist/: start from an empty directory.
find "$out" -mindepth 1 -delete
cp src/index.html src/*.js src/favicon.svg "$out"/
npx --no-install @tailwindcss/cli -i src/styles.css -o "$out/app.css" --minify
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$out"/
echo "web/build.sh: built $(ls "$out" | wc -l) files into $out"
