#!/bin/sh
# Build a Debian bookworm base image without a registry: debootstrap a minimal root file system
# from the machine's own apt mirror and `docker import` it.
#
#   container/offline/build_base_image.sh NAME     (FORCE=1 rebuilds an existing image;
#                                                    MIRROR=http://... overrides the apt sources)
#   container/offline/build_base_image.sh --print-mirror   (only show the mirror it would use)
#
# The mirror is read at run time from the apt sources of this machine, never written in a file:
# the `URIs:` field of /etc/apt/sources.list.d/*.sources (deb822) or the `deb` lines of
# /etc/apt/sources.list. The image holds Python 3.11 with venv, nginx-light and CA certificates,
# which is what container/Dockerfile needs from its base.
set -eu

NAME=${1:?usage: $0 IMAGE_NAME (e.g. my-project-base:bookworm) | --print-mirror}
SUITE=bookworm
APT_DIR=${APT_DIR:-/etc/apt}  # tests point this at a fake apt configuration
PACKAGES=python3,python3-venv,nginx-light,ca-certificates

die() {
    echo "build_base_image: $*" >&2
    exit 1
}

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

# Package caches and lists only make the image bigger; apt-get update refills them when needed.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/debootstrap

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    -c "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with $PACKAGES (debootstrap)\"" \
    - "$NAME"
echo "build_base_image: built $NAME"
docker image ls "$NAME"
