#!/usr/bin/env bash
# Debian's Chromium, for the browser test of report.html (tests/trainer/test_report_browser.py):
# prints its path; when it is missing, installs the `chromium` package as root (apt-get), or
# stops with one line saying what to install. The test drives it headless over the DevTools
# protocol; nothing else of the browser is downloaded.
#   hack/chromium.sh             -> /usr/bin/chromium
set -euo pipefail
found() { command -v chromium || command -v chromium-browser; }
if path=$(found); then echo "$path"; exit 0; fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "make test needs Chromium for the report's browser test: apt-get install chromium (Debian) as root" >&2
  exit 1
fi
echo "[chromium] installing Debian's chromium package" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
found
