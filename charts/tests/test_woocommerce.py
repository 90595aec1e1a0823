"""WooCommerce specifics: WordPress on 8080 as www-data, wp-cron on a clock beside it, and a setup script that
installs the store once and is harmless when run again (executed here against a fake wp-cli)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from charts.tests.rendering import CHARTS_DIR, HelmTemplateError, by_kind, find, render_chart
from charts.tests.support import ci_values, rendered

FAKE_WP = r"""#!/bin/sh
# Stand-in for wp-cli: records every call and keeps just enough state to answer the script.
state="$FAKE_WP_STATE"
printf '%s\n' "$*" >> "$state/calls.log"
case "$1 $2" in
  "core is-installed") [ -f "$state/installed" ] ;;
  "core install") read -r password; printf '%s' "$password" > "$state/password"; touch "$state/installed" ;;
  "plugin is-installed") [ -f "$state/plugin" ] ;;
  "plugin install") touch "$state/plugin" ;;
  "plugin is-active") [ -f "$state/active" ] ;;
  "plugin activate") touch "$state/active" ;;
  "post list") cat "$state/product" 2>/dev/null || true ;;
  "wc product") echo 42 > "$state/product" ;;
  *) true ;;
esac
"""
SCRIPT_ENV = {
    "WP_URL": "http://demo.127.0.0.1.nip.io",
    "WP_TITLE": "Demo Shop",
    "STORE_ADMIN_EMAIL": "owner@example.com",
    "WP_ADMIN_USER": "admin",
    "WP_ADMIN_PASSWORD": "Zq8-not-a-real-password-3xT",
    "WP_ADMIN_EMAIL": "admin@example.com",
    "WOO_VERSION": "",
    "WOO_PLUGIN_URL": "",
    "SETUP_IMAGE": "wordpress:cli-2.12.0-php8.3",
    "PRODUCT_NAME": "Test Product",
    "PRODUCT_PRICE": "19.99",
    "WORDPRESS_DB_HOST": "mariadb:3306",
}


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def _script() -> str:
    configmap = find(rendered("woocommerce"), "ConfigMap", "wp-setup")
    return configmap["data"]["setup.sh"]


def test_configmap_ships_the_chart_setup_script() -> None:
    assert _script() == (CHARTS_DIR / "woocommerce" / "files" / "setup.sh").read_text()


def test_setup_job_is_a_repeatable_hook_with_every_variable_the_script_reads() -> None:
    job = find(rendered("woocommerce"), "Job", "wp-setup")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # WP_PATH and TERMINATION_LOG exist for the tests below; the pod uses their defaults.
    script_vars = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", _script())) - {"WP_PATH", "TERMINATION_LOG"}

    assert job["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install,post-upgrade",
        "helm.sh/hook-weight": "0",
        "helm.sh/hook-delete-policy": "before-hook-creation",
    }
    assert container["image"].startswith("wordpress:cli-")
    assert script_vars <= _env(container).keys()
    assert _env(container)["WP_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "admin-password"


def test_wordpress_runs_as_www_data_on_8080_with_the_site_url() -> None:
    manifests = rendered("woocommerce", "prod")
    deployment = find(manifests, "Deployment", "wordpress")
    spec = deployment["spec"]["template"]["spec"]
    container, _cron = spec["containers"]
    extra = _env(container)["WORDPRESS_CONFIG_EXTRA"]["value"]
    apache = find(manifests, "ConfigMap", "apache")["data"]

    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert spec["securityContext"]["runAsUser"] == 33
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert apache["ports.conf"].strip() == "Listen 8080"
    assert "<VirtualHost *:8080>" in apache["000-default.conf"]
    assert "define('WP_HOME', 'https://demo.203.0.113.10.nip.io');" in extra
    assert "define('WP_SITEURL', 'https://demo.203.0.113.10.nip.io');" in extra
    assert "define('DISABLE_WP_CRON', true);" in extra
    startup = container["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 300
    assert all(p.get("initialDelaySeconds", 0) <= 10 for p in (startup, container["livenessProbe"]))


def test_storage_uses_the_given_class() -> None:
    manifests = rendered("woocommerce", "prod")
    claim = find(manifests, "PersistentVolumeClaim", "wordpress")
    (template,) = find(manifests, "StatefulSet", "mariadb")["spec"]["volumeClaimTemplates"]

    assert claim["spec"]["storageClassName"] == "local-path"
    assert template["spec"]["storageClassName"] == "local-path"


def test_cron_runs_due_events_every_minute_one_at_a_time_beside_wordpress() -> None:
    manifests = rendered("woocommerce")
    pod = find(manifests, "Deployment", "wordpress")["spec"]["template"]["spec"]
    web, cron = pod["containers"]
    script = cron["command"][-1]

    # No CronJob: a Job and a pod per store per minute would load the control plane with the fleet.
    assert by_kind(manifests, "CronJob") == []
    assert cron["name"] == "wp-cron" and cron["image"].endswith(":cli-2.12.0-php8.3")
    # One run at a time: the loop waits for each run, then sleeps the interval.
    assert "wp cron event run --due-now" in script and "sleep 60 & wait $!" in script
    assert script.index("wp core is-installed") < script.index("wp cron event run")
    # It sees the same WordPress files and wp-config constants as the web server, not its /tmp.
    mounts = {mount["name"]: mount["mountPath"] for mount in cron["volumeMounts"]}
    assert mounts == {"html": "/var/www/html", "cron-tmp": "/tmp"}
    assert {e["name"] for e in web["env"]} <= {e["name"] for e in cron["env"]}
    assert cron["resources"]["limits"] == {"cpu": "100m", "memory": "128Mi"}


def test_cron_interval_is_a_value_and_the_schema_bounds_it() -> None:
    local = [ci_values("woocommerce", "local")]
    manifests = render_chart("woocommerce", local, values={"cron": {"intervalSeconds": 300}})
    pod = find(manifests, "Deployment", "wordpress")["spec"]["template"]["spec"]
    assert "sleep 300 & wait $!" in pod["containers"][1]["command"][-1]

    with pytest.raises(HelmTemplateError, match="intervalSeconds"):
        render_chart("woocommerce", local, values={"cron": {"intervalSeconds": 1}})


@pytest.fixture
def fake_wordpress(tmp_path: Path) -> dict[str, str]:
    """A PATH with fake ``wp`` and ``php`` and a WordPress folder, plus the script's environment."""
    bin_dir, state, site = tmp_path / "bin", tmp_path / "state", tmp_path / "html"
    for folder in (bin_dir, state, site / "wp-includes"):
        folder.mkdir(parents=True)
    (site / "wp-config.php").write_text("<?php\n")
    (site / "wp-includes" / "version.php").write_text("<?php\n")
    for name, body in (("wp", FAKE_WP), ("php", "#!/bin/sh\nexit 0\n")):
        tool = bin_dir / name
        tool.write_text(body)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "setup.sh"
    script.write_text(_script())
    return SCRIPT_ENV | {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_WP_STATE": str(state),
        "WP_PATH": str(site),
        "SCRIPT": str(script),
        "TERMINATION_LOG": str(tmp_path / "termination-log"),
    }


def _run_setup(env: dict[str, str], *, exit_code: int = 0) -> list[str]:
    """Run the setup script once; return the wp calls it made."""
    log = Path(env["FAKE_WP_STATE"]) / "calls.log"
    log.unlink(missing_ok=True)
    result = subprocess.run(["sh", env["SCRIPT"]], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == exit_code, result.stdout + result.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_setup_installs_the_store_on_the_first_run(fake_wordpress: dict[str, str]) -> None:
    calls = _run_setup(fake_wordpress)
    state = Path(fake_wordpress["FAKE_WP_STATE"])

    assert (
        "core install --url=http://demo.127.0.0.1.nip.io --title=Demo Shop --admin_user=admin "
        "--admin_email=admin@example.com --skip-email --prompt=admin_password"
    ) in calls
    assert (state / "password").read_text() == SCRIPT_ENV["WP_ADMIN_PASSWORD"]
    assert all(SCRIPT_ENV["WP_ADMIN_PASSWORD"] not in call for call in calls)
    assert "plugin install woocommerce" in calls
    assert "plugin activate woocommerce" in calls
    assert "option update woocommerce_coming_soon no" in calls
    (cod,) = [c for c in calls if c.startswith("option update woocommerce_cod_settings --format=json ")]
    assert '"enabled":"yes"' in cod
    assert (
        "wc product create --user=admin --name=Test Product --type=simple --status=publish --regular_price=19.99"
    ) in calls
    assert "rewrite structure /%postname%/" in calls


def test_setup_run_again_changes_nothing_that_exists(fake_wordpress: dict[str, str]) -> None:
    _run_setup(fake_wordpress)

    calls = _run_setup(fake_wordpress)

    assert not [
        c for c in calls if c.startswith(("core install", "plugin install", "plugin activate", "wc "))
    ]
    assert "option update blogname Demo Shop" in calls
    assert "rewrite structure /%postname%/" in calls


def test_setup_pins_the_woocommerce_version_when_given(fake_wordpress: dict[str, str]) -> None:
    calls = _run_setup(fake_wordpress | {"WOO_VERSION": "9.9.5"})

    assert "plugin install woocommerce --version=9.9.5" in calls


def test_setup_installs_the_plugin_from_the_configured_zip(fake_wordpress: dict[str, str]) -> None:
    url = "https://mirror.example/plugin/woocommerce.9.9.5.zip"

    calls = _run_setup(fake_wordpress | {"WOO_PLUGIN_URL": url})

    assert f"plugin install {url}" in calls
    assert "plugin install woocommerce" not in calls


def test_setup_without_wp_cli_stops_before_anything_with_the_reason(fake_wordpress: dict[str, str]) -> None:
    (Path(fake_wordpress["PATH"].split(":")[0]) / "wp").unlink()
    env = fake_wordpress | {"PATH": fake_wordpress["PATH"].split(":", 1)[0] + ":/usr/bin:/bin"}

    calls = _run_setup(env, exit_code=78)

    assert calls == []
    reason = Path(env["TERMINATION_LOG"]).read_text()
    assert reason.startswith(
        "wp-cli (the wp command) is missing from the setup image wordpress:cli-2.12.0-php8.3"
    )
    assert "https://downloads.wordpress.org/plugin/woocommerce.zip" in reason
    assert "nothing was installed" in reason


def test_setup_with_an_unreachable_plugin_download_installs_nothing(fake_wordpress: dict[str, str]) -> None:
    php = Path(fake_wordpress["PATH"].split(":")[0]) / "php"
    # The download check is the only PHP call using get_headers; it fails as an offline cluster does.
    php.write_text(
        "#!/bin/sh\ncase \"$2\" in *get_headers*) echo 'getaddrinfo for downloads.wordpress.org failed' >&2;"
        " exit 1 ;; esac\nexit 0\n"
    )

    calls = _run_setup(fake_wordpress | {"WOO_VERSION": "9.9.5"}, exit_code=78)

    assert not [c for c in calls if c.startswith(("core install", "plugin install", "option", "wc "))]
    assert Path(fake_wordpress["TERMINATION_LOG"]).read_text() == (
        "cannot download the WooCommerce plugin from https://downloads.wordpress.org/plugin/woocommerce.9.9.5.zip "
        "(getaddrinfo for downloads.wordpress.org failed); set woocommerce.pluginUrl to a mirror or zip URL "
        "the cluster can reach, so nothing was installed\n"
    )


def test_setup_job_fails_at_once_on_the_scripts_configuration_exit() -> None:
    job = find(rendered("woocommerce"), "Job", "wp-setup")
    (container,) = job["spec"]["template"]["spec"]["containers"]

    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "wp-setup", "operator": "In", "values": [78]},
        }
    ]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert _env(container)["SETUP_IMAGE"]["value"] == container["image"]
