#!/usr/bin/env bash
# A Debian 12 (bookworm) base image made from Debian's own packages, for machines that can
# reach Debian's archive but no image registry:
#   bash deploy/base-image.sh                      # imports localhost/debian:bookworm
#   podman build --format docker --build-arg BASE=localhost/debian:bookworm -t voicegraph .
# ENGINE picks podman or docker (default: whichever is installed); DEBIAN_MIRROR the archive.
set -euo pipefail
image=${1:-localhost/debian:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
engine=${ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$engine" ] || { echo "neither podman nor docker is installed" >&2; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends debootstrap
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror"
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | "$engine" import - "$image"
echo "base image: $image"
