#!/usr/bin/env bash
# Debian's Chromium for the browser test of `mmkeras serve` (tests/test_serving.py drives it with Playwright,
# which never downloads a browser of its own). Does nothing if Chromium is already installed; installs it with
# apt-get as root, or through sudo; otherwise says so and lets the browser test skip with that reason.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
install=(apt-get install -y --no-install-recommends chromium)
if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && "${install[@]}" -qq && exit 0
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo "${install[@]}" -qq && exit 0
fi
echo "tools/install_chromium.sh: could not install Debian's chromium (needs root or sudo and apt);" \
     "the browser test of the web page will be skipped." >&2
exit 0
