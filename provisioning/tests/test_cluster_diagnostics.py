"""namespace_diagnostics: what a failed store's pods say, as the store's reason will show it."""

from __future__ import annotations

from kubernetes import config

from provisioning.cluster import namespace_diagnostics

WP_CLI_MISSING = (
    "wp-cli (the wp command) is missing from the setup image wordpress:cli-2.12.0-php8.3: it installs "
    "WordPress, the WooCommerce plugin (https://downloads.wordpress.org/plugin/woocommerce.zip) and "
    "the product, so nothing was installed"
)


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "store-shop"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def test_a_failed_containers_termination_message_is_reported_and_a_clean_exit_is_not(kube_api, tmp_path):
    kube_api.set_controllers(False)
    kube_api.create(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "store-shop"}}
    )
    kube_api.create("pods", _pod("wp-setup-abcde"))
    kube_api.set_status(
        "pods",
        "wp-setup-abcde",
        {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "wp-setup",
                    "ready": False,
                    "restartCount": 0,
                    "image": "wordpress:cli-2.12.0-php8.3",
                    "imageID": "",
                    "state": {
                        "terminated": {"exitCode": 78, "reason": "Error", "message": WP_CLI_MISSING + "\n"}
                    },
                }
            ],
        },
        "store-shop",
    )
    kube_api.create("pods", _pod("medusa-abcde"))
    kube_api.set_status(
        "pods",
        "medusa-abcde",
        {
            "phase": "Running",
            "initContainerStatuses": [
                {
                    "name": "migrate",
                    "ready": True,
                    "restartCount": 0,
                    "image": "medusa-store:2.21.2-2",
                    "imageID": "",
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        },
        "store-shop",
    )
    api = config.new_client_from_config(config_file=str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")))

    report = namespace_diagnostics(api, namespace="store-shop")

    assert report == f"pod wp-setup-abcde: container wp-setup exited 78: {WP_CLI_MISSING}"
