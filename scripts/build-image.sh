#!/usr/bin/env bash
# Why this file exists: a consortium runs MedChain as a container, but no base image can
# be pulled here (and none is needed): this script lays out the image's root filesystem
# from the release binary and the shared libraries `ldd` names, next to
# deploy/Containerfile, so that `podman build` / `docker build` work on that folder with
# nothing downloaded. It also writes the same image as a `docker load`-able archive
# (one layer, its config and manifest, digests by sha256), for machines without a
# builder. scripts/check-image.sh runs the result.
#
# Usage: scripts/build-image.sh [BINARY] [OUT]   (defaults: target/release/medchain, target/image)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/medchain}
out=${2:-target/image}
[ -x "$bin" ] || { echo "no executable at $bin: run cargo build --release first" >&2; exit 1; }
command -v ldd >/dev/null || { echo "ldd not found" >&2; exit 1; }

rm -rf "$out"
ctx="$out/context"
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
# Debug information is for the developer's machine; the image carries the stripped code.
objcopy --strip-debug "$bin" "$root/usr/local/bin/medchain"
chmod 0755 "$root/usr/local/bin/medchain"

# Every library the dynamic loader will ask for, at the path it will ask for it.
ldd "$bin" | awk '/=> \//{print $3} /^[[:space:]]*\/.*ld-linux/{print $1}' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# An unprivileged user to run as, and the name files a process reads at start.
printf 'root:x:0:0:root:/:/nonexistent\nmedchain:x:65534:65534:medchain:/data:/nonexistent\n' > "$root/etc/passwd"
printf 'root:x:0:\nmedchain:x:65534:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
cp deploy/Containerfile "$ctx/Containerfile"

python3 - "$root" "$out/medchain-image.tar" <<'PY'
# The docker-archive format (what `docker save` writes): layer.tar, a config whose
# rootfs.diff_ids name the layer's sha256, and manifest.json pointing at both.
import hashlib, io, json, os, sys, tarfile, time
root, dest = sys.argv[1], sys.argv[2]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(dirpath, name)
            info = t.gettarinfo(full, arcname=os.path.relpath(full, root))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with open(full, "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
layer_bytes = layer.getvalue()
layer_digest = hashlib.sha256(layer_bytes).hexdigest()
config = {
    "architecture": "amd64",
    "os": "linux",
    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0)),
    "config": {
        "User": "65534:65534",
        "WorkingDir": "/data",
        "Env": ["MEDCHAIN_LOG=info"],
        "Entrypoint": ["/usr/local/bin/medchain"],
        "Cmd": ["node", "--config", "/data/node.toml"],
        "ExposedPorts": {"5000/tcp": {}, "7000/tcp": {}},
        "Volumes": {"/data": {}},
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    "history": [{"created_by": "scripts/build-image.sh (FROM scratch)"}],
}
config_bytes = json.dumps(config, sort_keys=True).encode()
config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
manifest = [{"Config": config_name, "RepoTags": ["medchain:latest"],
             "Layers": [layer_digest + "/layer.tar"]}]
with tarfile.open(dest, mode="w") as t:
    for name, data in [(layer_digest + "/layer.tar", layer_bytes),
                       (config_name, config_bytes),
                       ("manifest.json", json.dumps(manifest).encode())]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
print(f"{dest}: layer sha256:{layer_digest[:16]}... {len(layer_bytes) / 1e6:.1f} MB")
PY
echo "build context: $ctx (podman build -t medchain $ctx)"
