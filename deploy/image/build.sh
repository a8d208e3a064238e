#!/usr/bin/env bash
# Builds the ecrd container image here, from Debian packages and ecrd's own wheels, pulling no public image:
#   1. the base: `debootstrap --variant=minbase` of Debian with python3, imported as BASE_IMAGE (once: an
#      existing BASE_IMAGE is reused);
#   2. the wheelhouse: ecrd's wheel built from this tree, and its dependencies from PyPI at the versions of
#      requirements/ci.lock, as wheels for the base's Python and C library;
#   3. `docker build` of deploy/image/Dockerfile on the base, without network.
#
# Usage: deploy/image/build.sh [TAG]        (default: ecrd:VERSION, VERSION from pyproject.toml)
# Needs root (debootstrap), debootstrap, the docker CLI on an engine (DOCKER_HOST as usual) and python3 with pip.
# Environment:
#   BASE_IMAGE     the base image's name (default ecrd-base:SUITE)
#   DEBIAN_SUITE   the Debian release of the base (default bookworm)
#   DEBIAN_MIRROR  where debootstrap fetches packages (default: the first Debian mirror of this machine's apt
#                  sources)
#   PYTHON         the Python that runs pip here (default python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
suite="${DEBIAN_SUITE:-bookworm}"
base_image="${BASE_IMAGE:-ecrd-base:${suite}}"
python="${PYTHON:-python3}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "${repo}/pyproject.toml" | head -n 1)"
tag="${1:-ecrd:${version}}"

log() { printf '==> %s\n' "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

default_mirror() {
    # The mirror this machine's apt already trusts: one-line sources ("deb URL SUITE …") and deb822 ("URIs: URL").
    {
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" { print $2 }'
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }'
    } | grep -E '/debian/?$' | head -n 1
}

build_base() {
    if docker image inspect "${base_image}" >/dev/null 2>&1; then
        log "reusing the base image ${base_image}"
        return
    fi
    local mirror="${DEBIAN_MIRROR:-$(default_mirror)}"
    if [ -z "${mirror}" ]; then
        log "no Debian mirror in this machine's apt sources: set DEBIAN_MIRROR"
        exit 1
    fi
    local rootfs="${work}/rootfs"
    log "debootstrap ${suite} (minbase, python3) from ${mirror}"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "${suite}" "${rootfs}" "${mirror}" >"${work}/debootstrap.log" 2>&1 || {
        tail -n 30 "${work}/debootstrap.log" >&2
        exit 1
    }
    # What a running registry never reads: package caches and lists, documentation, translations.
    rm -rf "${rootfs}"/var/cache/apt/* "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/usr/share/doc/* \
        "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/locale/* "${rootfs}"/var/log/*
    log "importing it as ${base_image}"
    tar --numeric-owner -C "${rootfs}" -c . | docker import - "${base_image}" >/dev/null
}

build_wheelhouse() {
    local wheels="${work}/context/wheels"
    mkdir -p "${wheels}"
    # Built from a copy of the sources, so nothing stale from an earlier in-tree build can slip into the wheel.
    mkdir -p "${work}/source"
    cp -r "${repo}/pyproject.toml" "${repo}/README.md" "${repo}/src" "${work}/source/"
    find "${work}/source" -name __pycache__ -prune -exec rm -rf {} +
    rm -rf "${work}/source/src/"*.egg-info
    log "building ecrd ${version}'s wheel"
    "${python}" -m pip wheel --quiet --no-deps --wheel-dir "${wheels}" "${work}/source"
    # Wheels for the base's interpreter and C library, whatever this machine runs.
    local target python_version glibc_minor arch
    target="$(docker run --rm --network none --entrypoint python3 "${base_image}" -c \
        'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}", platform.libc_ver()[1], platform.machine())')"
    read -r python_version glibc_minor arch <<<"${target}"
    glibc_minor="${glibc_minor#2.}"
    local platforms=()
    for minor in $(seq "${glibc_minor}" -1 17); do
        platforms+=(--platform "manylinux_2_${minor}_${arch}")
    done
    platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")
    log "downloading its dependencies for Python ${python_version}, glibc 2.${glibc_minor}, ${arch}"
    local wheel
    wheel="$(ls "${wheels}"/ecrd-*.whl)"
    "${python}" -m pip download --quiet --only-binary=:all: --dest "${wheels}" \
        --python-version "${python_version}" --implementation cp --abi "cp${python_version/./}" "${platforms[@]}" \
        --constraint "${repo}/requirements/ci.lock" "ecrd[postgresql] @ file://${wheel}"
}

build_image() {
    cp "${here}/Dockerfile" "${here}/healthcheck.py" "${work}/context/"
    log "docker build ${tag}"
    DOCKER_BUILDKIT=0 docker build --quiet --network none --build-arg "BASE_IMAGE=${base_image}" \
        --tag "${tag}" "${work}/context" >/dev/null
    log "built ${tag}"
}

build_base
build_wheelhouse
build_image
