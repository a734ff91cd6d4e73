#!/usr/bin/env bash
# The console in production mode: the exact commands a deployment runs (docker-compose.yml runs these too).
# Every input is an environment variable (README, "Configuration"); DJANGO_DEBUG must be off.
#
#   scripts/prod.sh release   collectstatic (hashed, compressed) + migrate: once per deploy, before the rest
#   scripts/prod.sh web       gunicorn on $BIND (default 0.0.0.0:$PORT, PORT 8000), $WEB_CONCURRENCY workers
#   scripts/prod.sh worker    a Celery worker ($CELERY_CONCURRENCY processes; as many workers as you like)
#   scripts/prod.sh beat      Celery beat (one per deployment; a second one cannot double a sync, only waste)
#   scripts/prod.sh all       release, then web + worker + beat on this host until one of them stops
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then :; elif [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
case "${DJANGO_DEBUG:-}" in 1|true|yes|on) echo "prod.sh: DJANGO_DEBUG is on; production mode needs it off" >&2; exit 2;; esac
export DJANGO_SETTINGS_MODULE=mdm.settings PYTHONUNBUFFERED=1
LOG_LEVEL="${LOG_LEVEL:-INFO}"

release() {
  # Independent of each other: side by side, and the release fails if either does.
  "$PYTHON" manage.py collectstatic --no-input -v 0 & local static=$!
  "$PYTHON" manage.py migrate --no-input -v 0
  wait "$static"
}
web() {
  exec "$PYTHON" -m gunicorn mdm.wsgi --config python:ops.gunicorn_conf \
    --bind "${BIND:-0.0.0.0:${PORT:-8000}}" \
    --workers "${WEB_CONCURRENCY:-3}" \
    --timeout "${GUNICORN_TIMEOUT:-60}" \
    --graceful-timeout 30 \
    --log-level "${LOG_LEVEL,,}"
}
worker() {
  local name=()
  [[ -n "${CELERY_WORKER_NAME:-}" ]] && name=(-n "$CELERY_WORKER_NAME")
  exec "$PYTHON" -m celery -A celery_app --quiet worker --loglevel="$LOG_LEVEL" \
    --concurrency="${CELERY_CONCURRENCY:-2}" "${name[@]}" --without-gossip --without-mingle
}
beat() {
  exec "$PYTHON" -m celery -A celery_app --quiet beat --loglevel="$LOG_LEVEL" \
    --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
}

case "${1:-}" in
  release) release ;;
  web) web ;;
  worker) worker ;;
  beat) beat ;;
  all)
    release
    pids=()
    ("$0" web) & pids+=($!)
    ("$0" worker) & pids+=($!)
    ("$0" beat) & pids+=($!)
    stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
    trap 'stop; exit 0' TERM INT
    # One process ending ends the whole stack: a supervisor (systemd, the orchestrator) restarts it.
    set +e
    wait -n
    status=$?
    stop
    exit "$status"
    ;;
  *) echo "usage: scripts/prod.sh release|web|worker|beat|all" >&2; exit 2 ;;
esac
