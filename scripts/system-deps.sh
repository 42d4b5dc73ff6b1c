#!/usr/bin/env bash
# Debian packages the tests and benchmarks use (browser, ffmpeg, curl, wrk). Installs only when run as
# root on Debian and something is missing; elsewhere it says what to install and carries on, and
# the tests that need a missing tool are skipped with the reason.
set -euo pipefail
packages=(chromium ffmpeg shellcheck curl wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) to run every test" >&2
fi
