#!/bin/sh
# Store setup for one WooCommerce release, run by the wp-setup hook Job after every install and
# upgrade. Every step checks before it acts, so running it again only re-applies settings.
set -eu
cd "${WP_PATH:-/var/www/html}"

log() { printf '%s wp-setup: %s\n' "$(date -u +%H:%M:%SZ)" "$*"; }

# fail REASON: stop before changing anything, with REASON as the container's termination message
# (the kubelet puts it in the pod's status, where the platform reads the store's failure reason),
# and exit 78 (EX_CONFIG), which the Job's podFailurePolicy turns into a failed Job at once: no
# retry can find a missing tool or an unreachable download.
fail() {
  log "$*"
  printf '%s\n' "$*" >"${TERMINATION_LOG:-/dev/termination-log}" 2>/dev/null || true
  exit 78
}

# Where the plugin comes from: a mirror or a zip URL (woocommerce.pluginUrl), else wordpress.org.
if [ -n "$WOO_PLUGIN_URL" ]; then
  plugin_source=$WOO_PLUGIN_URL
elif [ -n "$WOO_VERSION" ]; then
  plugin_source="https://downloads.wordpress.org/plugin/woocommerce.$WOO_VERSION.zip"
else
  plugin_source="https://downloads.wordpress.org/plugin/woocommerce.zip"
fi

# A HEAD request (redirects followed) with PHP's own HTTP client; the last status line decides.
plugin_reachable() {
  php -r '
    $context = stream_context_create(["http" => ["method" => "HEAD", "timeout" => 20, "ignore_errors" => true]]);
    $headers = @get_headers($argv[1], false, $context);
    if ($headers === false) {
      $error = error_get_last();
      fwrite(STDERR, $error ? $error["message"] : "no answer");
      exit(1);
    }
    $statuses = array_values(array_filter($headers, fn ($line) => str_starts_with($line, "HTTP/")));
    $last = end($statuses);
    if (!preg_match("#^HTTP/\S+ 2\d\d#", (string) $last)) {
      fwrite(STDERR, "answered " . $last);
      exit(1);
    }' "$1"
}

# Everything this script needs is checked before anything is written, so a store that cannot be
# set up is left with nothing half-installed.
command -v wp >/dev/null 2>&1 ||
  fail "wp-cli (the wp command) is missing from the setup image ${SETUP_IMAGE:-}: it installs WordPress, the WooCommerce plugin ($plugin_source) and the product, so nothing was installed"

# wait_for DESCRIPTION SECONDS COMMAND...
wait_for() {
  desc=$1
  budget=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    budget=$((budget - 5))
    if [ "$budget" -le 0 ]; then
      log "gave up waiting for $desc"
      exit 1
    fi
    sleep 5
  done
  log "$desc: ready"
}

# The wordpress pod copies WordPress onto the shared volume and writes wp-config.php on first boot.
files_ready() { [ -s wp-config.php ] && [ -s wp-includes/version.php ]; }

# A plain mysqli connect: `wp core is-installed` cannot tell "no database" from "not installed".
db_ready() {
  php -r '
    mysqli_report(MYSQLI_REPORT_OFF);
    [$host, $port] = array_pad(explode(":", getenv("WORDPRESS_DB_HOST")), 2, "3306");
    $db = @mysqli_connect($host, getenv("WORDPRESS_DB_USER"), getenv("WORDPRESS_DB_PASSWORD"),
                          getenv("WORDPRESS_DB_NAME"), (int) $port);
    exit($db ? 0 : 1);'
}

wait_for "WordPress files" 600 files_ready
wait_for "MariaDB" 600 db_ready

if ! wp core is-installed || ! wp plugin is-installed woocommerce; then
  problem=$(plugin_reachable "$plugin_source" 2>&1) ||
    fail "cannot download the WooCommerce plugin from $plugin_source ($problem); set woocommerce.pluginUrl to a mirror or zip URL the cluster can reach, so nothing was installed"
fi

if wp core is-installed; then
  log "WordPress is already installed"
else
  log "installing WordPress at $WP_URL"
  # --prompt reads the password from stdin, keeping it out of the process list.
  printf '%s\n' "$WP_ADMIN_PASSWORD" | wp core install \
    --url="$WP_URL" --title="$WP_TITLE" \
    --admin_user="$WP_ADMIN_USER" --admin_email="$WP_ADMIN_EMAIL" \
    --skip-email --prompt=admin_password
fi

wp option update blogname "$WP_TITLE"
wp option update admin_email "$STORE_ADMIN_EMAIL"

if wp plugin is-installed woocommerce; then
  log "WooCommerce is already installed"
elif [ -n "$WOO_PLUGIN_URL" ]; then
  log "installing WooCommerce from $WOO_PLUGIN_URL"
  wp plugin install "$WOO_PLUGIN_URL"
elif [ -n "$WOO_VERSION" ]; then
  wp plugin install woocommerce --version="$WOO_VERSION"
else
  wp plugin install woocommerce
fi
wp plugin is-active woocommerce || wp plugin activate woocommerce

# New WooCommerce stores start in "coming soon" mode, which hides the shop from customers.
wp option update woocommerce_coming_soon no
wp option update woocommerce_cod_settings --format=json \
  '{"enabled":"yes","title":"Cash on delivery","description":"Pay with cash upon delivery.","instructions":"Pay with cash upon delivery.","enable_for_methods":[],"enable_for_virtual":"yes"}'

product_ids=$(wp post list --post_type=product --post_status=any --title="$PRODUCT_NAME" --format=ids)
if [ -n "$product_ids" ]; then
  log "product \"$PRODUCT_NAME\" exists (id $product_ids)"
else
  wp wc product create --user="$WP_ADMIN_USER" --name="$PRODUCT_NAME" --type=simple \
    --status=publish --regular_price="$PRODUCT_PRICE"
fi

wp rewrite structure '/%postname%/'
log "done"
