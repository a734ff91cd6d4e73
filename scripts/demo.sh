#!/usr/bin/env bash
# Sets everything up and starts the whole console with a seeded demo tenant:
# web (runserver), Celery worker and beat, the Google emulator and a private slapd, under honcho.
# Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export DJANGO_DEBUG=1
export DEMO_WEB_ADDR=${DEMO_WEB_ADDR:-127.0.0.1:8000}
export DEMO_GOOGLE_PORT=${DEMO_GOOGLE_PORT:-8085}
export DEMO_LDAP_PORT=${DEMO_LDAP_PORT:-3389}
export DEMO_DEVICES=${DEMO_DEVICES:-500}
export DEMO_GOOGLE_DOMAIN=${DEMO_GOOGLE_DOMAIN:-example.com}
export GOOGLE_EMULATOR_HOST=127.0.0.1:${DEMO_GOOGLE_PORT}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mdm}
# The demo tenant's directory is the demo slapd on the loopback: the one internal destination allowed.
export MDM_OUTBOUND_ALLOWED_NETWORKS=${MDM_OUTBOUND_ALLOWED_NETWORKS:-127.0.0.1/32}
export MDM_OUTBOUND_ALLOWED_PORTS=${MDM_OUTBOUND_ALLOWED_PORTS:-${DEMO_LDAP_PORT}}

for port in "${DEMO_WEB_ADDR##*:}" "$DEMO_GOOGLE_PORT" "$DEMO_LDAP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "Port $port is already in use: stop what uses it or set DEMO_WEB_ADDR / DEMO_GOOGLE_PORT / DEMO_LDAP_PORT." >&2
    exit 1
  fi
done

db_name=${DATABASE_URL##*/}
if ! psql "${DATABASE_URL%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='${db_name}'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres "$db_name"
fi
.venv/bin/python manage.py migrate --no-input -v 0

mkdir -p var/demo
# Google's OU tree mirrors the demo directory's OUs, as the guide requires (OUs imported from LDAP).
.venv/bin/python -c "from ldap_sync import demo_directory; print('\n'.join(demo_directory.demo().ou_paths()))" > var/demo/ou_paths.txt
.venv/bin/python manage.py demo_seed
# The demo tenant's LDAP directory is the demo slapd below (its service account's password is a demo value).
LDAP_BIND_PASSWORD=sync-secret .venv/bin/python manage.py ldap_configure demo --uri "ldap://127.0.0.1:${DEMO_LDAP_PORT}"

echo
echo "  MDM console:  http://${DEMO_WEB_ADDR}/   (Ctrl-C stops everything)"
echo "  Login:        admin@demo.example / demo-admin-2026   (tenant 'demo')"
echo
exec .venv/bin/honcho -f Procfile.demo start
