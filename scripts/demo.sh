#!/usr/bin/env bash
# Sets everything up and starts the whole console with a seeded demo tenant:
# web (runserver), Celery worker and beat, the Google emulator and a private slapd, under honcho.
# DEMO_DIRECTORY=active-directory serves a Samba AD DC instead of slapd (needs root: its own network namespace).
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
export DEMO_DIRECTORY=${DEMO_DIRECTORY:-openldap}
case "$DEMO_DIRECTORY" in
  openldap)
    export DEMO_DIRECTORY_COMMAND="ldap_sync.slapd --port ${DEMO_LDAP_PORT} --data-dir var/demo/slapd --seed demo" ;;
  active-directory)
    export DEMO_DIRECTORY_COMMAND="ldap_sync.samba_ad --tls-port ${DEMO_LDAP_PORT} --tls-dir var/demo/ad-tls" ;;
  *) echo "DEMO_DIRECTORY must be openldap or active-directory." >&2; exit 1 ;;
esac
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
directory_module=$([ "$DEMO_DIRECTORY" = active-directory ] && echo ad_directory || echo demo_directory)
.venv/bin/python -c "from ldap_sync import ${directory_module} as d; print('\n'.join(d.demo().ou_paths()))" > var/demo/ou_paths.txt
.venv/bin/python manage.py demo_seed
# The demo tenant's LDAP directory is the demo slapd (or Samba AD) below; its service account's password is a
# demo value. Every setting is given, so switching DEMO_DIRECTORY never keeps the other kind's values.
if [ "$DEMO_DIRECTORY" = active-directory ]; then
  .venv/bin/python -m ldap_sync.samba_ad --tls-dir var/demo/ad-tls --write-tls-only
  LDAP_BIND_PASSWORD=Sync-Secret-42 .venv/bin/python manage.py ldap_configure demo --kind active-directory \
    --uri "ldaps://127.0.0.1:${DEMO_LDAP_PORT}" --ca-file var/demo/ad-tls/ca.pem --no-start-tls \
    --base-dn "DC=example,DC=test" --bind-dn "mdm-sync@example.test" --group-base-dn "" \
    --admin-group "CN=MDM Admins,OU=Groupes,DC=example,DC=test" \
    --operator-group "CN=MDM Opérateurs,OU=Groupes,DC=example,DC=test" \
    --readonly-group "CN=MDM Lecture,OU=Groupes,DC=example,DC=test"
  demo_logins="AD users (password Demo-Secret-42): cdurand (admin), lfontaine@example.test (operator), EXAMPLE\\hcote (read-only)"
else
  LDAP_BIND_PASSWORD=sync-secret .venv/bin/python manage.py ldap_configure demo --kind openldap \
    --uri "ldap://127.0.0.1:${DEMO_LDAP_PORT}" --no-ca --no-start-tls \
    --base-dn "dc=example,dc=com" --bind-dn "cn=mdm-sync,ou=Services,dc=example,dc=com" --group-base-dn "" \
    --admin-group "cn=mdm-admins,ou=Groupes,dc=example,dc=com" \
    --operator-group "cn=mdm-operators,ou=Groupes,dc=example,dc=com" \
    --readonly-group "cn=mdm-readonly,ou=Groupes,dc=example,dc=com"
  demo_logins="LDAP users (password demo-secret): camille.durand (admin), lea.fontaine (operator), helene.cote (read-only)"
fi

echo
echo "  MDM console:  http://${DEMO_WEB_ADDR}/   (Ctrl-C stops everything)"
echo "  Login:        admin@demo.example / demo-admin-2026   (tenant 'demo')"
echo "  Directory:    ${DEMO_DIRECTORY}: ${demo_logins}"
echo
exec .venv/bin/honcho -f Procfile.demo start
