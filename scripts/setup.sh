#!/usr/bin/env bash
# Installs everything the console needs on a fresh Debian machine of this kind, idempotently:
# system packages, the virtualenv with Python dependencies, front-end assets, compiled translations.
# PostgreSQL and Redis are expected on 127.0.0.1 (they run on this kind of machine; docker-compose.yml elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(slapd ldap-utils libldap2-dev libsasl2-dev gettext chromium postgresql-client samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldb-tools socat)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> Installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> Installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ ! -d node_modules/@picocss/pico ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> Installing front-end assets (npm)"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "==> Compiling translations"
DJANGO_DEBUG=1 .venv/bin/python manage.py compilemessages --ignore=.venv --ignore=node_modules -v 0
