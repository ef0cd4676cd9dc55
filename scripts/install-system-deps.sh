#!/usr/bin/env bash
# System packages the tests need:
#   libfribidi0      – Pillow's bundled raqm dlopens it; without it conjuncts silently render wrongly
#                      (the Bengali grapheme renderer, training/data/bengali_render.py)
#   fonts-beng       – Likhan, Mukti, Ani, Jamrul (fonts-beng-extra) and Lohit Bengali/Assamese
#   fonts-noto-core  – Noto Sans/Serif Bengali (also what the web page's Bengali text is shown in)
#   postgresql       – initdb/pg_ctl for the writer store's tests on a real server (tests/postgres.py)
#   chromium         – the browser that tests/browser/ drives with Playwright (Debian's is a real
#                      package; Ubuntu's is a snap wrapper, so there set CHROMIUM_PATH instead)
# Idempotent: installs only what is missing. Without root or apt-get it only says what to do.
set -euo pipefail

packages=(libfribidi0 fonts-beng fonts-noto-core postgresql)
if grep -qsx 'ID=ubuntu' /etc/os-release; then
  echo "notice: not installing Ubuntu's snap chromium; browser tests use CHROMIUM_PATH or /usr/bin/google-chrome" >&2
else
  packages+=(chromium)
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "notice: apt-get not found; install ${packages[*]} (or their equivalents) by hand" >&2
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "notice: not root; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
