#!/bin/sh
# Build a Debian bookworm base image without a registry: debootstrap a minimal root file system
# from the machine's own apt mirror and `docker import` it.
#
#   container/offline/build_base_image.sh NAME     (FORCE=1 rebuilds an existing image;
#                                                    MIRROR=http://... overrides the apt sources)
#   container/offline/build_base_image.sh --print-mirror   (only show the mirror it would use)
#   container/offline/build_base_image.sh --slim DIR       (only apply the slimming to a root tree)
#
# The mirror is read at run time from the apt sources of this machine, never written in a file:
# the `URIs:` field of /etc/apt/sources.list.d/*.sources (deb822) or the `deb` lines of
# /etc/apt/sources.list. The image holds Python 3.11 with venv, nginx-light, CA certificates and
# libgomp1 (the OpenMP runtime LightGBM's wheel links against), which is what container/Dockerfile
# needs from its base. Documentation, man pages, translations and apt's caches are removed, and a
# dpkg filter keeps later `apt-get install`s from bringing them back (as the debian:*-slim images do).
set -eu

NAME=${1:?usage: $0 IMAGE_NAME (e.g. my-project-base:bookworm) | --print-mirror | --slim ROOTFS_DIR}
SUITE=bookworm
APT_DIR=${APT_DIR:-/etc/apt}  # tests point this at a fake apt configuration
PACKAGES=python3,python3-venv,nginx-light,ca-certificates,libgomp1

die() {
    echo "build_base_image: $*" >&2
    exit 1
}

# What a server never reads: package caches and lists (apt-get update refills them), docs and man
# pages (the copyright files stay), translations. Sizes are printed so each step can be weighed.
slim() {
    root=$1
    echo "build_base_image: $(du -sm "$root" | cut -f1) MB after debootstrap"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
        "$root"/debootstrap
    echo "build_base_image: $(du -sm "$root" | cut -f1) MB without apt caches and lists"
    if [ -d "$root"/usr/share/doc ]; then
        find "$root"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
        find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
    fi
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
        "$root"/usr/share/linda "$root"/var/cache/man
    echo "build_base_image: $(du -sm "$root" | cut -f1) MB without docs and man pages"
    [ ! -d "$root"/usr/share/locale ] ||
        find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    echo "build_base_image: $(du -sm "$root" | cut -f1) MB without translations"
    rm -rf "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old "$root"/tmp/*
    # Later apt-get installs (a user's Dockerfile) skip the same paths.
    mkdir -p "$root"/etc/dpkg/dpkg.cfg.d "$root"/etc/apt/apt.conf.d
    cat > "$root"/etc/dpkg/dpkg.cfg.d/slim <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
DPKG
    echo 'APT::Install-Recommends "false"; APT::Install-Suggests "false";' > "$root"/etc/apt/apt.conf.d/99slim
}

if [ "$NAME" = --slim ]; then  # slim an unpacked root file system only (tests use this)
    slim "${2:?usage: $0 --slim ROOTFS_DIR}"
    exit 0
fi

if [ "$NAME" != --print-mirror ] && [ "${FORCE:-0}" != 1 ] && docker image inspect "$NAME" >/dev/null 2>&1; then
    echo "build_base_image: $NAME exists, skipping (FORCE=1 rebuilds it)"
    exit 0
fi

# Print the first mirror URI for $SUITE (else the first one at all) from the apt sources.
find_mirror() {
    for f in "$APT_DIR"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas are separated by blank lines; comments start with '#'.
        awk -v suite="$SUITE" '
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) match_suite = 1 }
            function flush() {
                if (uri != "" && match_suite && best == "") best = uri
                if (uri != "" && first == "") first = uri
                uri = ""; match_suite = 0
            }
            END { flush(); print (best != "" ? best : first) }
        ' "$f"
    done
    if [ -f "$APT_DIR/sources.list" ]; then
        # deb [options] URI suite components...
        awk -v suite="$SUITE" '
            $1 != "deb" { next }
            { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } }
            $(i + 1) == suite && best == "" { best = $i }
            first == "" { first = $i }
            END { print (best != "" ? best : first) }
        ' "$APT_DIR/sources.list"
    fi
}

if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(find_mirror | grep -m1 -E '^(https?|file)://' || true)
fi
[ -n "$MIRROR" ] ||
    die "no apt mirror found in $APT_DIR/sources.list.d/*.sources (URIs:) or $APT_DIR/sources.list (deb lines); set MIRROR=http://..."
if [ "$NAME" = --print-mirror ]; then
    echo "$MIRROR"
    exit 0
fi


[ "$(id -u)" = 0 ] || die "debootstrap needs root: run as root (e.g. sudo make base-image)"
command -v debootstrap >/dev/null 2>&1 ||
    die "debootstrap is not installed: apt-get update && apt-get install -y debootstrap"

ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/base-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

echo "build_base_image: debootstrap $SUITE from $MIRROR into $ROOTFS"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR"; then
    trap - EXIT INT TERM  # keep the tree: its debootstrap/debootstrap.log says what went wrong
    die "debootstrap failed; see $ROOTFS/debootstrap/debootstrap.log"
fi

slim "$ROOTFS"

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    -c "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with $PACKAGES (debootstrap)\"" \
    - "$NAME"
echo "build_base_image: built $NAME"
docker image ls "$NAME"
