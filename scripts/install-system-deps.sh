#!/usr/bin/env bash
# Debian packages that two tests need: Chromium for the browser test of the Dagster UI and
# PostgreSQL for the test of a Dagster instance stored in PostgreSQL. Installs what is missing
# when it can (root and apt-get, as in CI); otherwise says so and those tests are skipped.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Not installed: ${missing[*]} (needs root and apt-get); the tests that use them will be skipped." >&2
  exit 0
fi
echo "Installing ${missing[*]} from Debian's packages..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
