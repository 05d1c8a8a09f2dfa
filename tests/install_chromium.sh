#!/bin/sh
# Chromium for the browser tests (tests/browser): Debian's package, installed where this user
# may (root, or sudo without a password). Never fails: where Chromium cannot be had, those tests
# skip and say why.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get here; install Chromium yourself or the browser tests skip"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then as_root=""
elif sudo -n true 2>/dev/null; then as_root="sudo -n"
else
  echo "install_chromium: not root and no passwordless sudo; the browser tests skip"
  exit 0
fi
echo "install_chromium: installing Debian's chromium for the browser tests (at most 10 minutes)"
export DEBIAN_FRONTEND=noninteractive
log="${TMPDIR:-/tmp}/install_chromium.log"
install() { timeout 300 $as_root apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; }
install || { timeout 300 $as_root apt-get update -q >>"$log" 2>&1 && install; } || {
  echo "install_chromium: apt-get could not install chromium; the browser tests skip. Its last words:"
  tail -n 5 "$log"
}
exit 0
