#!/usr/bin/env bash
# System packages the tests need, installed only when missing (Debian/Ubuntu, run as root).
# Idempotent and quiet when everything is present: `apt-get update` runs at most once, and only
# if something has to be installed.
#
# Each entry is "command-to-check:debian-package". Add a line to add a dependency.
set -euo pipefail

NEEDED=(
    "chromium:chromium" # the widget's browser test (Playwright drives /usr/bin/chromium)
    "redis-server:redis-server" # a private Redis for the shared-store tests (tests/redis_server.py)
)

missing=()
for entry in "${NEEDED[@]}"; do
    command_name="${entry%%:*}"
    package="${entry#*:}"
    if ! command -v "$command_name" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${missing[*]} and no apt-get here; install them by hand" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "system-deps: missing ${missing[*]}; run as root or install them by hand" >&2
        exit 1
    fi
fi

echo "==> installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
