<?php
/**
 * wp-config.php of the wordpress stand-in image: every setting is read from the environment when a
 * request (or wp-cli) runs, so every pod sharing this file uses its own variables. The variables are
 * the official image's: WORDPRESS_DB_HOST, _NAME, _USER, _PASSWORD, _CHARSET, _COLLATE,
 * WORDPRESS_TABLE_PREFIX, WORDPRESS_DEBUG, WORDPRESS_<salt name>, WORDPRESS_CONFIG_EXTRA; each may
 * also be given as <NAME>_FILE, a path to read it from (a mounted Secret).
 */

function getenv_docker($name, $default) {
	$file = getenv($name . '_FILE');
	if ($file !== false && is_readable($file)) {
		return rtrim(file_get_contents($file), "\r\n");
	}
	$value = getenv($name);
	return $value === false ? $default : $value;
}

define('DB_NAME', getenv_docker('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', getenv_docker('WORDPRESS_DB_USER', 'example username'));
define('DB_PASSWORD', getenv_docker('WORDPRESS_DB_PASSWORD', 'example password'));
define('DB_HOST', getenv_docker('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', getenv_docker('WORDPRESS_DB_CHARSET', 'utf8mb4'));
define('DB_COLLATE', getenv_docker('WORDPRESS_DB_COLLATE', ''));

// The entrypoint replaces each __RANDOM_...__ with a fresh value when it writes this file.
define('AUTH_KEY', getenv_docker('WORDPRESS_AUTH_KEY', '__RANDOM_AUTH_KEY__'));
define('SECURE_AUTH_KEY', getenv_docker('WORDPRESS_SECURE_AUTH_KEY', '__RANDOM_SECURE_AUTH_KEY__'));
define('LOGGED_IN_KEY', getenv_docker('WORDPRESS_LOGGED_IN_KEY', '__RANDOM_LOGGED_IN_KEY__'));
define('NONCE_KEY', getenv_docker('WORDPRESS_NONCE_KEY', '__RANDOM_NONCE_KEY__'));
define('AUTH_SALT', getenv_docker('WORDPRESS_AUTH_SALT', '__RANDOM_AUTH_SALT__'));
define('SECURE_AUTH_SALT', getenv_docker('WORDPRESS_SECURE_AUTH_SALT', '__RANDOM_SECURE_AUTH_SALT__'));
define('LOGGED_IN_SALT', getenv_docker('WORDPRESS_LOGGED_IN_SALT', '__RANDOM_LOGGED_IN_SALT__'));
define('NONCE_SALT', getenv_docker('WORDPRESS_NONCE_SALT', '__RANDOM_NONCE_SALT__'));

$table_prefix = getenv_docker('WORDPRESS_TABLE_PREFIX', 'wp_');
define('WP_DEBUG', (bool) getenv_docker('WORDPRESS_DEBUG', ''));

// Behind an ingress that terminates TLS, WordPress must still build https URLs.
if (isset($_SERVER['HTTP_X_FORWARDED_PROTO']) && strpos($_SERVER['HTTP_X_FORWARDED_PROTO'], 'https') !== false) {
	$_SERVER['HTTPS'] = 'on';
}

$config_extra = getenv_docker('WORDPRESS_CONFIG_EXTRA', '');
if ($config_extra) {
	eval($config_extra);
}

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
