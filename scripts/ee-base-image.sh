#!/usr/bin/env bash
# Makes a base image for the collection's AWX execution environment from Debian packages alone
# (debootstrap + podman import), for machines that reach no container registry.
#
#   bash scripts/ee-base-image.sh [IMAGE]      (default: localhost/certops-ee-base:bookworm)
#
# The image holds what ansible-builder expects of a base: a Python 3.11 whose ensurepip works
# (Debian disables it for the system Python, so a virtual environment at /opt/python, first on
# PATH, where ansible-builder installs pip, ansible-core and the rest), bash, apt-get with fresh package lists (the build installs the collection's bindep
# packages with it) and this machine's CA bundle and pip settings, so that the build reaches
# PyPI the way this machine does. Nothing else: ansible-builder adds ansible-core,
# ansible-runner and the collection's Python requirements.
# Needs root, debootstrap and podman. An image that already exists is kept (remove it with
# `podman rmi IMAGE` to make it again).
set -euo pipefail

image=${1:-localhost/certops-ee-base:bookworm}
suite=${CERTOPS_EE_SUITE:-bookworm}
mirror=${CERTOPS_EE_MIRROR:-http://deb.debian.org/debian}

if ! [[ $image =~ ^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$ ]]; then
  echo "ee-base-image: '$image' is not an image name (lowercase name[:tag])" >&2
  exit 2
fi
if podman image exists "$image"; then
  echo "ee-base-image: $image exists, kept"
  exit 0
fi

rootfs=$(mktemp -d /tmp/certops-ee-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# This machine may reach PyPI through a TLS-inspecting proxy: its CA bundle and pip's settings
# for it (certificate and timeout only; its local indexes and constraints are paths the build
# cannot see) go in, so pip inside the build trusts what pip here trusts.
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = 180\ndisable-pip-version-check = true\n' \
  >"$rootfs/etc/pip.conf"
# Python from Debian (with ensurepip, which ansible-builder runs), and package lists, so that
# apt-get install works in the build's stages.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -q --no-install-recommends \
  python3.11 python3.11-venv >/dev/null
chroot "$rootfs" apt-get clean
chroot "$rootfs" python3.11 -m venv --without-pip /opt/python
: >"$rootfs/etc/resolv.conf"

tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' \
  --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$image" >/dev/null
echo "ee-base-image: made $image"
