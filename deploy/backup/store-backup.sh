#!/usr/bin/env bash
# Backs up or restores one store: its database (MariaDB for WooCommerce, PostgreSQL for Medusa) and
# its uploads directory when the store keeps them locally. Run by the platform's backup, restore and
# drill Jobs inside the store's namespace (stores/backups.py builds them), and natively by the tests.
#
#   store-backup.sh backup    streams   <prefix>/database.gz, <prefix>/uploads.tar.gz, <prefix>/manifest
#   store-backup.sh restore   verifies every part against the manifest, then loads them
#   store-backup.sh verify    the restore drill's readiness check: BACKUP_CHECK_QUERY against the
#                             (restored) database must give the value the manifest recorded
#
# Everything comes from the environment, never argv (argv is world-readable in /proc, and Job specs
# and logs keep it):
#   BACKUP_ENGINE            woocommerce | medusa
#   BACKUP_PREFIX            object key prefix of this backup, e.g. tenants/7/stores/shop/20261201T1700Z
#   S3_ENDPOINT S3_BUCKET S3_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY   (from a Secret)
#   woocommerce: DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD (MYSQL_PWD is set from it)
#   medusa:      PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD (libpq reads them itself)
#   UPLOADS_DIR              optional; empty or unset means the store has no local uploads
#   BACKUP_CHECK_QUERY       optional; one SQL query giving one value (e.g. an order count), recorded
#                            in the manifest at backup time and compared by `verify`
#   BACKUP_WORK_DIR          scratch space for restore downloads (default: $TMPDIR or /tmp)
#
# The last line on stdout is one machine-readable result the platform parses:
#   BACKUP-RESULT ok size=<bytes> sha256=<manifest sha256>
#   BACKUP-RESULT failed reason=<bucket-unreachable|bucket-refused|dump-failed|checksum-mismatch|restore-failed|check-mismatch|bad-input> <detail>
set -uo pipefail

# In a pod the result also goes to the termination message, which the platform reads from the pod's
# status (no log access needed); natively /dev/termination-log does not exist and that is fine.
result() {
  echo "$1"
  { [ -w /dev/termination-log ] && echo "$1" >/dev/termination-log; } 2>/dev/null || true
}

result_fail() { # reason detail...
  local reason="$1"; shift
  result "BACKUP-RESULT failed reason=$reason $*"
  exit 1
}

for var in BACKUP_ENGINE BACKUP_PREFIX S3_ENDPOINT S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
  [ -n "${!var:-}" ] || result_fail bad-input "$var is not set"
done
case "$BACKUP_ENGINE" in woocommerce|medusa) ;; *) result_fail bad-input "BACKUP_ENGINE=$BACKUP_ENGINE is not woocommerce or medusa" ;; esac
# A prefix from the platform is a relative key of safe characters; anything else would let a bad row
# address another tenant's objects.
[[ "$BACKUP_PREFIX" =~ ^[A-Za-z0-9][A-Za-z0-9._/-]*$ && "$BACKUP_PREFIX" != *..* ]] ||
  result_fail bad-input "BACKUP_PREFIX has characters outside [A-Za-z0-9._/-]"
region="${S3_REGION:-us-east-1}"
base="${S3_ENDPOINT%/}/$S3_BUCKET/$BACKUP_PREFIX"
work="${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}}"

# curl signs with SigV4 itself; its credentials go in through a config file descriptor written by
# printf, a shell builtin, so the secret never appears in any process's argv (only /dev/fd/N does).
# Not `--config -`: stdin carries the streamed body.
curl_auth() { printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"; }

s3() { # method object [curl args...]; body on stdin for PUT
  local method="$1" object="$2"; shift 2
  curl --silent --show-error --fail-with-body --config <(curl_auth) --aws-sigv4 "aws:amz:$region:s3" \
      --header "x-amz-content-sha256: UNSIGNED-PAYLOAD" --request "$method" "$@" "$base/$object"
}

# Reachability first, so an unreachable or refusing bucket is reported as that and not as a dump
# failure. A HEAD on the bucket answers 200 (ours), 403 (credentials refused) or 404 (no bucket).
probe_bucket() {
  local code
  code="$(curl --silent --output /dev/null --write-out '%{http_code}' --config <(curl_auth) --aws-sigv4 "aws:amz:$region:s3" \
      --header "x-amz-content-sha256: UNSIGNED-PAYLOAD" --head --max-time 15 "${S3_ENDPOINT%/}/$S3_BUCKET/")"
  case "$code" in
    200) ;;
    000) result_fail bucket-unreachable "no answer from ${S3_ENDPOINT}" ;;
    *) result_fail bucket-refused "HTTP $code for bucket $S3_BUCKET" ;;
  esac
}

dump_database() {
  if [ "$BACKUP_ENGINE" = woocommerce ]; then
    # --single-transaction: a consistent InnoDB snapshot without locking the shop's tables.
    MYSQL_PWD="${DB_PASSWORD:-}" mysqldump --single-transaction --routines --triggers --no-tablespaces \
      --host="${DB_HOST:-127.0.0.1}" --port="${DB_PORT:-3306}" --user="${DB_USER:-root}" "${DB_NAME:?DB_NAME is not set}"
  else
    # -Fc is compressed already, but gzip keeps one restore path for both engines.
    pg_dump -Fc --no-owner --no-privileges
  fi
}

# One value from BACKUP_CHECK_QUERY; nothing (and status 1) when the query fails.
check_value() {
  if [ "$BACKUP_ENGINE" = woocommerce ]; then
    MYSQL_PWD="${DB_PASSWORD:-}" mysql --batch --skip-column-names --host="${DB_HOST:-127.0.0.1}" \
      --port="${DB_PORT:-3306}" --user="${DB_USER:-root}" "${DB_NAME:?DB_NAME is not set}" -e "$BACKUP_CHECK_QUERY"
  else
    psql -X -qAt -v ON_ERROR_STOP=1 -c "$BACKUP_CHECK_QUERY"
  fi
}

load_database() { # file (gzip)
  if [ "$BACKUP_ENGINE" = woocommerce ]; then
    gzip -dc "$1" | MYSQL_PWD="${DB_PASSWORD:-}" mysql --host="${DB_HOST:-127.0.0.1}" --port="${DB_PORT:-3306}" \
      --user="${DB_USER:-root}" "${DB_NAME:?DB_NAME is not set}"
  else
    # --clean --if-exists replaces the objects the dump holds; nothing else in the database is touched.
    gzip -dc "$1" | pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --dbname="${PGDATABASE:?PGDATABASE is not set}"
  fi
}

# Streams stdin to <object> while hashing and counting it; prints "<sha256> <bytes>".
put_stream() { # object
  local sums="$work/.put.$$"
  tee >(sha256sum | cut -d' ' -f1 >"$sums.sha") >(wc -c >"$sums.len") |
    s3 PUT "$1" --upload-file - --output /dev/null || return 1
  # The process substitutions finish after tee; wait for their files.
  for _ in $(seq 50); do [ -s "$sums.sha" ] && [ -s "$sums.len" ] && break; sleep 0.1; done
  echo "$(cat "$sums.sha") $(tr -d ' ' <"$sums.len")"
  rm -f "$sums.sha" "$sums.len"
}

backup() {
  probe_bucket
  local db_err="$work/.dump-err.$$" db_sum up_sum="" manifest
  db_sum="$( (dump_database 2>"$db_err" || echo failed >"$db_err.rc") | gzip -6 | put_stream database.gz)" ||
    result_fail bucket-refused "upload of database.gz failed"
  if [ -e "$db_err.rc" ]; then
    local detail; detail="$(head -c 300 "$db_err" | tr '\n' ' ')"
    rm -f "$db_err" "$db_err.rc"
    s3 DELETE database.gz --output /dev/null || true
    result_fail dump-failed "$detail"
  fi
  rm -f "$db_err"
  if [ -n "${UPLOADS_DIR:-}" ]; then
    [ -d "$UPLOADS_DIR" ] || result_fail bad-input "UPLOADS_DIR $UPLOADS_DIR is not a directory"
    # Sorted names and fixed owners/mtimes-as-is make the same tree give the same tar listing.
    up_sum="$(tar -C "$UPLOADS_DIR" --sort=name --numeric-owner -cf - . | gzip -6 | put_stream uploads.tar.gz)" ||
      result_fail bucket-refused "upload of uploads.tar.gz failed"
  fi
  local check=""
  # Right after the dump, so a drill compares with (nearly) the same moment; --single-transaction
  # means later writes may differ by a few rows on a busy shop, which the drill then reports.
  if [ -n "${BACKUP_CHECK_QUERY:-}" ]; then
    check="$(check_value 2>/dev/null | head -1 | tr -d '[:space:]')" || check=""
  fi
  manifest="$work/.manifest.$$"
  {
    echo "engine $BACKUP_ENGINE"
    [ -n "$check" ] && echo "check $check"
    echo "database.gz ${db_sum}"
    [ -n "$up_sum" ] && echo "uploads.tar.gz ${up_sum}"
  } >"$manifest"
  s3 PUT manifest --upload-file "$manifest" --output /dev/null || result_fail bucket-refused "upload of manifest failed"
  local total=0 sha
  total=$(awk 'NF == 3 {s += $3} END {print s + 0}' "$manifest")
  sha="$(sha256sum "$manifest" | cut -d' ' -f1)"
  rm -f "$manifest"
  result "BACKUP-RESULT ok size=$total sha256=$sha"
}

restore() {
  probe_bucket
  local dir="$work/restore.$$" expected="${BACKUP_SHA256:-}"
  # The trap expands $dir now: the function's local is gone by the time the shell exits.
  # shellcheck disable=SC2064
  mkdir -p "$dir" && trap "rm -rf '$dir'" EXIT
  s3 GET manifest --output "$dir/manifest" 2>"$dir/err" ||
    result_fail bucket-refused "manifest not readable: $(head -c 200 "$dir/err")"
  # The platform passes the manifest checksum it recorded; a manifest that differs was replaced.
  if [ -n "$expected" ] && [ "$(sha256sum "$dir/manifest" | cut -d' ' -f1)" != "$expected" ]; then
    result_fail checksum-mismatch "manifest sha256 differs from the recorded one"
  fi
  grep -q "^engine $BACKUP_ENGINE\$" "$dir/manifest" || result_fail bad-input "backup is not a $BACKUP_ENGINE backup"
  # Download and verify every part before touching the store: a half-restored shop is worse than none.
  local part sha size
  while read -r part sha size; do
    [ "$part" = engine ] || [ "$part" = check ] && continue
    s3 GET "$part" --output "$dir/$part" 2>"$dir/err" || result_fail bucket-refused "$part not readable"
    [ "$(sha256sum "$dir/$part" | cut -d' ' -f1)" = "$sha" ] || result_fail checksum-mismatch "$part"
  done <"$dir/manifest"
  load_database "$dir/database.gz" 2>"$dir/err" || result_fail restore-failed "$(head -c 300 "$dir/err" | tr '\n' ' ')"
  if [ -f "$dir/uploads.tar.gz" ]; then
    [ -n "${UPLOADS_DIR:-}" ] || result_fail bad-input "the backup has uploads but UPLOADS_DIR is not set"
    mkdir -p "$UPLOADS_DIR"
    # Replace, not merge: files added after the backup must not survive a restore.
    find "$UPLOADS_DIR" -mindepth 1 -delete
    tar -C "$UPLOADS_DIR" -xzf "$dir/uploads.tar.gz" --no-same-owner || result_fail restore-failed "uploads did not unpack"
  fi
  result "BACKUP-RESULT ok size=$(awk 'NF == 3 {s += $3} END {print s + 0}' "$dir/manifest") sha256=$(sha256sum "$dir/manifest" | cut -d' ' -f1)"
}

verify() {
  probe_bucket
  local dir="$work/verify.$$" expected actual
  # The trap expands $dir now: the function's local is gone by the time the shell exits.
  # shellcheck disable=SC2064
  mkdir -p "$dir" && trap "rm -rf '$dir'" EXIT
  s3 GET manifest --output "$dir/manifest" 2>"$dir/err" || result_fail bucket-refused "manifest not readable"
  expected="$(awk '$1 == "check" {print $2}' "$dir/manifest")"
  [ -n "$expected" ] || result_fail bad-input "the backup recorded no check value"
  [ -n "${BACKUP_CHECK_QUERY:-}" ] || result_fail bad-input "BACKUP_CHECK_QUERY is not set"
  actual="$(check_value 2>"$dir/err" | head -1 | tr -d '[:space:]')" ||
    result_fail check-mismatch "the check query failed: $(head -c 200 "$dir/err" | tr '\n' ' ')"
  [ "$actual" = "$expected" ] || result_fail check-mismatch "expected $expected, the restored copy has $actual"
  result "BACKUP-RESULT ok check=$actual"
}

case "${1:-}" in
  backup) backup ;;
  restore) restore ;;
  verify) verify ;;
  *) result_fail bad-input "usage: store-backup.sh backup|restore|verify" ;;
esac
