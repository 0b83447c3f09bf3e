#!/usr/bin/env bash
# Creates $REPO/.venv-fhir with the pinned FHIR validator (tests-fhir/requirements.txt),
# which crates/fhir/tests/validate.rs runs. Idempotent: when the venv already holds exactly
# these requirements it returns without touching the network.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-fhir"
REQ="$REPO/tests-fhir/requirements.txt"
STAMP="$VENV/.requirements.sha256"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c 'import fhir.resources' 2>/dev/null; then
    echo "tests-fhir: $VENV up to date"
    exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
echo "$want" > "$STAMP"
echo "tests-fhir: installed $(grep -c '==' "$REQ") pinned packages into $VENV"
