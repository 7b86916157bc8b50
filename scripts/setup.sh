#!/bin/sh
# scripts/setup.sh — install the Debian packages Relasi needs to build, test and
# run its demo. Safe to run repeatedly: it asks dpkg what is already there and
# calls apt-get only for what is missing (a fresh Debian 12 machine, as root).
set -eu

# libarchive-tools: bsdtar, which the bundle tests use to take bundles apart.
# libclang-rt-14-dev: clang's sanitizer and libFuzzer runtimes (only
# recommended by clang, which --no-install-recommends skips).
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev \
libsqlite3-dev sqlite3 libjansson-dev libcsv-dev \
libmbedtls-dev libgit2-dev libutf8proc-dev libarchive-dev zlib1g-dev \
python3 openssl libarchive-tools zstd git chromium"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup: all packages present"
fi
