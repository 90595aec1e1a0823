#!/usr/bin/env bash
# Starts the whole platform in the foreground: web, a Celery worker with beat, and the fleet watcher.
# Ctrl-C stops them all. Used by `make run` and `make demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=.venv/bin
port="${PORT:-8000}"

trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

"$bin/celery" -A platform_site worker --beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" --schedule var/celerybeat-schedule &

# The fleet watcher follows every cluster's stores (manage.py watch_clusters). The API double of a
# simulated demo speaks HTTP/1.1 without watches over HTTP/2, so there the reconciler's helm sampling
# keeps the stores current instead.
if [ -z "${CLUSTER_IS_SIMULATED:-}" ]; then
  "$bin/python" manage.py watch_clusters &
fi

if [ "$("$bin/python" -c 'import django; django.setup(); from django.conf import settings; print(settings.DEBUG)' 2>/dev/null)" = "True" ]; then
  "$bin/python" manage.py runserver "127.0.0.1:$port" &
else
  "$bin/python" manage.py collectstatic --noinput >/dev/null
  "$bin/gunicorn" platform_site.wsgi --bind "127.0.0.1:$port" --workers "${WEB_WORKERS:-2}" --preload --config python:platform_site.gunicorn_config --access-logfile - &
fi
echo "Platform: http://127.0.0.1:$port/   Admin: http://127.0.0.1:$port/admin/"
wait -n
