#!/usr/bin/env bash
# Starts the whole platform in the foreground: web, a Celery worker and Celery beat.
# Ctrl-C stops all three. Used by `make run` and `make demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=.venv/bin
port="${PORT:-8000}"

trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

"$bin/celery" -A platform_site worker --beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" --schedule var/celerybeat-schedule &

if [ "$("$bin/python" -c 'import django; django.setup(); from django.conf import settings; print(settings.DEBUG)' 2>/dev/null)" = "True" ]; then
  "$bin/python" manage.py runserver "127.0.0.1:$port" &
else
  "$bin/python" manage.py collectstatic --noinput >/dev/null
  "$bin/gunicorn" platform_site.wsgi --bind "127.0.0.1:$port" --workers "${WEB_WORKERS:-2}" --access-logfile - &
fi
echo "Platform: http://127.0.0.1:$port/   Admin: http://127.0.0.1:$port/admin/"
wait -n
