#!/usr/bin/env bash
# The console in production mode: the exact commands a deployment runs (docker-compose.yml runs these too).
# Every input is an environment variable (README, "Configuration"); DJANGO_DEBUG must be off.
#
#   scripts/prod.sh release   collectstatic (hashed, compressed) + migrate: once per deploy, before the rest
#   scripts/prod.sh web       gunicorn on $BIND (default 0.0.0.0:$PORT, PORT 8000), $WEB_CONCURRENCY workers
#   scripts/prod.sh worker    a Celery worker ($CELERY_CONCURRENCY processes; as many workers as you like);
#                             every queue, or those of $CELERY_QUEUES (comma-separated), pool $CELERY_POOL (prefork)
#   scripts/prod.sh sync-worker  a Celery worker for the ChromeOS sync queue only ($CHROMEOS_SYNC_QUEUE):
#                             $CELERY_SYNC_CONCURRENCY threads (16) in one process, pool $CELERY_SYNC_POOL (threads):
#                             a sync mostly waits on Google, so one process runs many (docs/notes/milestone-2/pool.md)
#   scripts/prod.sh beat      Celery beat (one per deployment; a second one cannot double a sync, only waste)
#   scripts/prod.sh all       release, then web + worker (every queue but the sync one) + sync-worker + beat on
#                             this host until one of them stops
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
  local name=() queues=()
  [[ -n "${CELERY_WORKER_NAME:-}" ]] && name=(-n "$CELERY_WORKER_NAME")
  [[ -n "${CELERY_QUEUES:-}" ]] && queues=(-Q "$CELERY_QUEUES")
  exec "$PYTHON" -m celery -A celery_app --quiet worker --loglevel="$LOG_LEVEL" \
    --pool="${CELERY_POOL:-prefork}" --concurrency="${CELERY_CONCURRENCY:-2}" "${name[@]}" "${queues[@]}" \
    --without-gossip --without-mingle
}
sync_worker() {
  # Threads: one process (~110 MB) runs many syncs while they wait on Google; each busy slot holds two
  # PostgreSQL connections (Django's and the tenant's advisory lock), size max_connections for it.
  exec "$PYTHON" -m celery -A celery_app --quiet worker --loglevel="$LOG_LEVEL" \
    --pool="${CELERY_SYNC_POOL:-threads}" --concurrency="${CELERY_SYNC_CONCURRENCY:-16}" \
    -Q "${CHROMEOS_SYNC_QUEUE:-chromeos-sync}" -n "${CELERY_SYNC_WORKER_NAME:-sync@%h}" \
    --without-gossip --without-mingle
}
beat() {
  exec "$PYTHON" -m celery -A celery_app --quiet beat --loglevel="$LOG_LEVEL" \
    --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
}

case "${1:-}" in
  release) release ;;
  web) web ;;
  worker) worker ;;
  sync-worker) sync_worker ;;
  beat) beat ;;
  all)
    release
    pids=()
    ("$0" web) & pids+=($!)
    (CELERY_QUEUES="${CELERY_QUEUES:-celery}" "$0" worker) & pids+=($!)
    ("$0" sync-worker) & pids+=($!)
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
  *) echo "usage: scripts/prod.sh release|web|worker|sync-worker|beat|all" >&2; exit 2 ;;
esac
