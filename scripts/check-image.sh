#!/usr/bin/env bash
# Why this file exists: an image that builds is not yet an image that runs. This script
# checks what scripts/build-image.sh made, without a container daemon (none runs here):
# the docker-archive's digests agree with its contents, and the root filesystem alone is
# enough to run MedChain: inside a chroot of it, as the unprivileged uid 65534, `init`
# lays out a demo consortium, its four replicas start, and a doctor signs in and adds a
# record that commits. Needs root (chroot), as in CI; elsewhere it checks the archive only.
#
# Usage: scripts/check-image.sh [OUT] [HTTP_PORT] [P2P_PORT]   (defaults target/image, 15900, 17900)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/image}
http_port=${2:-15900}
p2p_port=${3:-17900}
root="$out/context/rootfs"
[ -d "$root" ] || { echo "no image at $out: run scripts/build-image.sh first" >&2; exit 1; }

python3 - "$out/medchain-image.tar" <<'PY'
import hashlib, io, json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    manifest = json.load(t.extractfile("manifest.json"))
    assert len(manifest) == 1, manifest
    m = manifest[0]
    config_bytes = t.extractfile(m["Config"]).read()
    assert hashlib.sha256(config_bytes).hexdigest() + ".json" == m["Config"], "config digest"
    config = json.loads(config_bytes)
    (layer_name,) = m["Layers"]
    layer_bytes = t.extractfile(layer_name).read()
    digest = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    assert config["rootfs"]["diff_ids"] == [digest], "layer digest"
    assert config["config"]["User"] == "65534:65534", "runs unprivileged"
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
        names = set(layer.getnames())
    assert "usr/local/bin/medchain" in names, "binary in the layer"
    assert not any(n.startswith(("bin/sh", "usr/bin/")) for n in names), "no shell or tools"
    print(f"archive: digests agree, {len(names)} entries, {len(layer_bytes) / 1e6:.1f} MB layer")
PY

if [ "$(id -u)" != 0 ] || ! command -v chroot >/dev/null; then
    echo "not root: archive checked, the chroot run skipped"
    exit 0
fi

run() { chroot --userspec=65534:65534 "$root" /usr/local/bin/medchain "$@"; }
run --help >/dev/null
rm -rf "$root/tmp/c"
run init --dir /tmp/c --demo --http-port "$http_port" --p2p-port "$p2p_port" >/dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$root/tmp/c"; }
trap cleanup EXIT
for i in 0 1 2 3; do
    chroot --userspec=65534:65534 "$root" /usr/local/bin/medchain node --config "/tmp/c/node$i.toml" \
        >"$out/node$i.log" 2>&1 &
    pids+=($!)
done
api=http://127.0.0.1:$http_port
for _ in $(seq 1 60); do
    curl -fsS "$api/healthz" >/dev/null 2>&1 && { echo "api up after $SECONDS s" >&2; break; }
    sleep 0.5
done
token=$(curl -fsS -H 'content-type: application/json' \
    -d '{"username":"d001","password":"doctor123"}' "$api/api/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
answer=$(curl -fsS -m 30 -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d '{"patient_id":"p001","diagnosis":"image check","prescription":"none","notes":"chroot"}' \
    "$api/api/add_record")
echo "$answer" | python3 -c 'import json,sys; a=json.load(sys.stdin); assert a["block_height"] >= 1, a; print("chroot run: four replicas from the image committed record", a["record_id"], "at height", a["block_height"])'
