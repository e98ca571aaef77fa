#!/usr/bin/env bash
# Make sure a working docker engine and a `python:3.11-slim` image exist.
#
# Idempotent; used by CI (.ci/run, as root on a fresh machine: no engine, no
# images) and by developers. A second run only checks and takes seconds.
#
#  1. Engine: if `docker info` fails, install docker.io + debootstrap from
#     Debian (apt-get update only when needed), write /etc/docker/daemon.json
#     (no default bridge, no iptables: the machine allows neither; build with
#     --network host, run with --network host on 127.0.0.1) and start dockerd
#     in the background (log: $DOCKERD_LOG).
#  2. Image: no container registry is reachable, so python:3.11-slim cannot be
#     pulled. If it is missing, build a stand-in: debootstrap a minbase
#     bookworm rootfs, import it as debian-minbase:bookworm, then build
#     scripts/base-image/Dockerfile on it (Debian's python3.11; trusts the
#     host's CA bundle so pip/uv reach PyPI with --network host; see the
#     comments in that Dockerfile for why nothing else is passed in).
#  3. Print the stand-in's size.
#
# Environment knobs:
#   DOCKERD_LOG            dockerd log file          (/var/log/dockerd.log)
#   DOCKERD_WAIT           seconds to wait for dockerd (90)
#   DEBIAN_MIRROR          debootstrap mirror (default: first URIs: of the
#                          host's apt sources)
#   ENSURE_DOCKER_REBUILD  1 = rebuild the stand-in (and base) even if present
set -euo pipefail

log() { printf 'ensure_docker: %s\n' "$*"; }
die() { printf 'ensure_docker: ERROR: %s\n' "$*" >&2; exit 1; }

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKERFILE_DIR="$SCRIPT_DIR/base-image"
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_WAIT=${DOCKERD_WAIT:-90}
BASE_IMAGE=debian-minbase:bookworm
TARGET_IMAGE=python:3.11-slim
SUITE=bookworm
REBUILD=${ENSURE_DOCKER_REBUILD:-0}
# Docker's bundled client is newer than Debian's engine and would want buildx.
export DOCKER_BUILDKIT=0

# apt-get, dockerd, debootstrap and the docker socket all need root (CI and
# the developers' machines run as root).
[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"

WORK_DIRS=()
cleanup() {
    local d
    for d in "${WORK_DIRS[@]+"${WORK_DIRS[@]}"}"; do
        rm -rf --one-file-system "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT

docker_ok() { docker info >/dev/null 2>&1; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# ---------------------------------------------------------------- engine ----
apt_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    # apt-get update only if the package lists do not know the packages yet
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            log "apt-get update"
            apt-get update -qq
            break
        fi
    done
    # Keep the package's init script from starting dockerd with defaults.
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    log "apt-get install ${missing[*]}"
    local rc=0 apt_log
    apt_log=$(mktemp /tmp/ensure-docker-apt.XXXXXX.log)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        # stale lists (404s): refresh once and retry
        log "apt-get install failed (rc=$rc); apt-get update and retry"
        apt-get update -qq
        rc=0
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 || rc=$?
    fi
    [ "$policy_added" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$apt_log" >&2
        die "apt-get install ${missing[*]} failed (log: $apt_log)"
    fi
    rm -f "$apt_log"
}

start_engine() {
    # --no-install-recommends (in apt_install): docker.io would also pull
    # needrestart (hooks into every later apt run), apparmor, git, ...
    apt_install docker.io debootstrap
    command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"

    local want='{"bridge": "none", "iptables": false}'
    mkdir -p /etc/docker
    if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]; then
        log "writing /etc/docker/daemon.json"
        printf '%s\n' "$want" >/etc/docker/daemon.json
    fi

    local pid=""
    pid=$(pgrep -x dockerd | head -n1 || true)
    if [ -n "$pid" ]; then
        log "dockerd already running (pid $pid), waiting for it"
    else
        log "starting dockerd (log: $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid+nohup: the daemon must outlive this script and its caller.
        setsid nohup dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 &
        pid=$!
    fi

    local waited=0
    until docker_ok; do
        if [ "$waited" -ge "$DOCKERD_WAIT" ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "dockerd did not answer 'docker info' within ${DOCKERD_WAIT}s (log: $DOCKERD_LOG)"
        fi
        if ! pgrep -x dockerd >/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "dockerd exited during startup (log: $DOCKERD_LOG)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "docker engine up after ${waited}s"
}

# ----------------------------------------------------------------- images ---
# First mirror URI of the host's apt sources (deb822 file first, then the
# one-line format).
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk 'tolower($1) == "uris:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set DEBIAN_MIRROR)"
    echo "$m"
}

# Files that make a rootfs look like the official debian:*-slim images.
slim_rootfs() {
    local root=$1
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in the official debian:*-slim images
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
    echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    # drop what those excludes would not have installed, and all caches
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/{groff,info,linda,lintian,man}/* 2>/dev/null || true
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
        "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* 2>/dev/null || true
    # debootstrap's own one-line sources; the stand-in gets the host's sources
    rm -f "$root/etc/apt/sources.list"
    : >"$root/etc/hostname"
    : >"$root/etc/resolv.conf"
}

ensure_base_image() {
    if image_exists "$BASE_IMAGE" && [ "$REBUILD" != 1 ]; then
        log "$BASE_IMAGE present"
        return
    fi
    pkg_installed debootstrap || apt_install debootstrap
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/ensure-docker-rootfs.XXXXXX)
    WORK_DIRS+=("$rootfs")
    log "debootstrap --variant=minbase $SUITE ($mirror), ~1 min"
    if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" \
            >"$rootfs.log" 2>&1; then
        tail -n 30 "$rootfs.log" >&2
        die "debootstrap failed (log: $rootfs.log)"
    fi
    rm -f "$rootfs.log"
    slim_rootfs "$rootfs"
    log "importing rootfs as $BASE_IMAGE"
    tar -C "$rootfs" --numeric-owner -c . \
        | docker import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - "$BASE_IMAGE" >/dev/null
}

# Build context: the Dockerfile, the host CA bundle, the host's apt sources.
make_context() {
    local ctx=$1 f
    cp "$DOCKERFILE_DIR/Dockerfile" "$ctx/Dockerfile"
    [ -r /etc/ssl/certs/ca-certificates.crt ] || die "host CA bundle /etc/ssl/certs/ca-certificates.crt missing"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    mkdir -p "$ctx/apt/sources.list.d" "$ctx/apt/apt.conf.d" "$ctx/apt/keyrings"
    if [ -s /etc/apt/sources.list ]; then
        cp /etc/apt/sources.list "$ctx/apt/sources.list"
    else
        echo '# see /etc/apt/sources.list.d/' >"$ctx/apt/sources.list"
    fi
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && cp "$f" "$ctx/apt/sources.list.d/"
    done
    # the host's own Acquire:: settings (e.g. Check-Valid-Until "false" for a
    # snapshot mirror): files no package owns; the docker-* ones are already
    # in the base rootfs.
    for f in /etc/apt/apt.conf.d/*; do
        [ -f "$f" ] || continue
        case "$(basename "$f")" in docker-*) continue ;; esac
        dpkg -S "$f" >/dev/null 2>&1 && continue
        grep -q '^[[:space:]]*Acquire::' "$f" && cp "$f" "$ctx/apt/apt.conf.d/"
    done
    for f in /etc/apt/keyrings/*; do
        [ -f "$f" ] && cp "$f" "$ctx/apt/keyrings/"
    done
    return 0
}

ensure_target_image() {
    local recipe
    recipe=$(sha256sum "$DOCKERFILE_DIR/Dockerfile" | cut -c1-16)
    if image_exists "$TARGET_IMAGE" && [ "$REBUILD" != 1 ]; then
        local have
        have=$(docker image inspect -f '{{index .Config.Labels "ensure-docker.recipe"}}' "$TARGET_IMAGE" 2>/dev/null || true)
        if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
            log "$TARGET_IMAGE present (not a local stand-in; kept)"
            return
        elif [ "$have" = "$recipe" ]; then
            log "$TARGET_IMAGE present (stand-in, recipe $recipe)"
            return
        fi
        log "$TARGET_IMAGE is a stand-in from an older Dockerfile ($have); rebuilding"
    fi
    ensure_base_image
    local ctx old_id
    old_id=$(docker image inspect -f '{{.Id}}' "$TARGET_IMAGE" 2>/dev/null || true)
    ctx=$(mktemp -d /tmp/ensure-docker-ctx.XXXXXX)
    WORK_DIRS+=("$ctx")
    make_context "$ctx"
    log "building $TARGET_IMAGE stand-in FROM $BASE_IMAGE (log: $ctx.log)"
    if ! docker build --network host --pull=false \
            --build-arg "BASE_IMAGE=$BASE_IMAGE" \
            --label "ensure-docker.recipe=$recipe" \
            -t "$TARGET_IMAGE" "$ctx" >"$ctx.log" 2>&1; then
        tail -n 40 "$ctx.log" >&2
        die "docker build of the $TARGET_IMAGE stand-in failed (log: $ctx.log)"
    fi
    rm -f "$ctx.log"
    # drop the replaced stand-in unless something still uses it
    if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$TARGET_IMAGE")" ]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
}

# ------------------------------------------------------------------- main ---
command -v docker >/dev/null || apt_install docker.io
if docker_ok; then
    log "docker engine already running"
else
    start_engine
fi
ensure_target_image

size=$(docker image inspect -f '{{.Size}}' "$TARGET_IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" 2>/dev/null || echo 0)
if [ "$base_size" -gt 0 ] 2>/dev/null; then
    log "$TARGET_IMAGE size: $((size / 1000000)) MB ($size bytes; $(( (size - base_size) / 1000000 )) MB above $BASE_IMAGE)"
else
    log "$TARGET_IMAGE size: $((size / 1000000)) MB ($size bytes)"
fi
