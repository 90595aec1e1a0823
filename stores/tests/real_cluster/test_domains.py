"""A custom domain end to end on a real control plane of its own (cert-manager's CRDs are
cluster-wide, so the session's shared cluster is left without them): the apiserver validates
Certificates against cert-manager's CRD; a real Celery worker and helm route a verified domain; the
real cert-manager controllers (deploy/cert-manager) issue its certificate from a CA ClusterIssuer;
the domain follows the Certificate to active, and the store page in Debian's Chromium shows it turn
active without a reload; removing it removes route, Certificate and Secret."""

from __future__ import annotations

import base64
import json
import urllib.error

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from stores.choices import DomainStatus, StoreStatus
from stores.domains import (
    domain_add,
    domain_remove,
    domain_verification_name,
    domains_follow_certificates,
    domains_recheck_due,
)
from stores.lifecycle import store_create
from stores.models import StoreDomain
from stores.tests.browser.conftest import browser  # noqa: F401 - the Chromium fixture, shared
from stores.tests.browser.test_domains import TIMEOUT_MS, _signed_in_context
from stores.tests.real_cluster.support import status_of, unique_name
from testkit.cert_manager import ControllerProcess, ca_material, controller_binary, crd_documents
from testkit.dns_server import dns_server
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.real_cluster,
    pytest.mark.browser,
]

CERTS = "cert-manager.io/v1"
ISSUER = "store-platform-test-ca"
CA_NAME = "store-platform test CA"


def _condition(obj: dict | None, kind: str) -> str:
    for condition in (obj or {}).get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return condition["status"]
    return ""


def _install_cert_manager(cluster) -> None:
    for crd in crd_documents():
        cluster.apply(crd)
    for crd in crd_documents():
        name = crd["metadata"]["name"]
        wait_for(
            lambda n=name: (
                _condition(
                    cluster.get("customresourcedefinitions", n, api="apiextensions.k8s.io/v1"), "Established"
                )
                == "True"
            ),
            timeout=60,
            what=f"CRD {name} established",
        )


def _refused(cluster, body: dict, query: str = "") -> str:
    try:
        cluster.request("POST", f"/apis/{CERTS}/namespaces/default/certificates{query}", body)
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {json.loads(exc.read()).get('message', '')}"
    raise AssertionError("the apiserver accepted an invalid Certificate")


def _ca_issuer(cluster) -> None:
    cert_pem, key_pem = ca_material(CA_NAME)
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}})
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ISSUER, "namespace": "cert-manager"},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(cert_pem).decode(),
                "tls.key": base64.b64encode(key_pem).decode(),
            },
        }
    )
    cluster.apply(
        {
            "apiVersion": CERTS,
            "kind": "ClusterIssuer",
            "metadata": {"name": ISSUER},
            "spec": {"ca": {"secretName": ISSUER}},
        }
    )


def _domain(pk: int) -> StoreDomain:
    return StoreDomain.objects.get(pk=pk)


def test_a_verified_domain_is_routed_issued_and_removed(
    fresh_cluster,
    tenant,
    owner,
    start_worker,
    settings,
    tmp_path,
    client,
    browser,  # noqa: F811 - the fixture imported above
    live_server,
):
    cluster = fresh_cluster
    binary = controller_binary()
    _install_cert_manager(cluster)

    # The apiserver enforces cert-manager's schema: no issuerRef, or an unknown field, is refused.
    bad = {
        "apiVersion": CERTS,
        "kind": "Certificate",
        "metadata": {"name": "bad"},
        "spec": {"secretName": "x"},
    }
    assert _refused(cluster, bad).startswith("422") and "issuerRef" in _refused(cluster, bad)
    typo = {**bad, "spec": {"secretName": "x", "issuerRef": {"name": ISSUER}, "dnsNamez": ["a.example.com"]}}
    assert "dnsNamez" in _refused(cluster, typo, "?fieldValidation=Strict")

    _ca_issuer(cluster)
    controller = ControllerProcess(binary, cluster.kubeconfig_path, tmp_path / "cert-manager.log")
    try:
        wait_for(
            lambda: _condition(cluster.get("clusterissuers", ISSUER, api=CERTS), "Ready") == "True",
            timeout=60,
            what=f"ClusterIssuer {ISSUER} ready\n{controller.log()}",
        )
        start_worker(cluster, HELM_BINARIES["helm4"], DOMAIN_CLUSTER_ISSUER=ISSUER)
        store, _ = store_create(tenant=tenant, name=unique_name("dom"), engine="woocommerce")
        wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=180, what="store ready")

        domain = domain_add(store=store, domain="shop.example.com", actor=owner)
        with dns_server() as dns:
            settings.DOMAIN_DNS_NAMESERVERS = [dns.nameserver]
            dns.zone.set_txt(domain_verification_name(domain.domain), domain.token)
            domains_recheck_due()
        assert _domain(domain.pk).status == DomainStatus.VERIFIED

        # The verification re-installed the store; once that install has succeeded the domain issues.
        def routed() -> bool:
            domains_recheck_due()
            return _domain(domain.pk).status == DomainStatus.ISSUING

        wait_for(routed, timeout=180, what="the re-install routing the domain")
        ingress = cluster.get("ingresses", "wordpress-domains", store.namespace, api="networking.k8s.io/v1")
        (rule,) = ingress["spec"]["rules"]
        (tls,) = ingress["spec"]["tls"]
        assert rule["host"] == "shop.example.com" and tls["hosts"] == ["shop.example.com"]
        (certificate,) = cluster.objects("certificates", store.namespace, api=CERTS)
        assert certificate["spec"]["dnsNames"] == ["shop.example.com"]
        assert certificate["spec"]["issuerRef"]["name"] == ISSUER
        assert certificate["spec"]["secretName"] == tls["secretName"]

        name = certificate["metadata"]["name"]
        wait_for(
            lambda: (
                _condition(cluster.get("certificates", name, store.namespace, api=CERTS), "Ready") == "True"
            ),
            timeout=120,
            what=f"Certificate {name} ready\n{controller.log()}",
        )
        secret = cluster.get("secrets", tls["secretName"], store.namespace)
        assert secret["type"] == "kubernetes.io/tls"
        issued = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
        sans = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == ["shop.example.com"]
        assert issued.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_NAME

        # The merchant watches the store page while the periodic pass reads the issued Certificate.
        page = _signed_in_context(browser, live_server, owner).new_page()
        page.goto(f"/stores/{store.name}/")
        selector = '#store-domains [data-domain="shop.example.com"][data-status="{}"]'
        page.locator(selector.format("issuing")).wait_for(timeout=TIMEOUT_MS)

        access = access_for(cluster, HELM_BINARIES["helm4"], tmp_path / "helm")
        assert domains_follow_certificates(store_id=store.pk, access=access) == 1
        on_page = page.locator(selector.format("active"))
        on_page.wait_for(timeout=TIMEOUT_MS)
        assert "Certificate valid until" in on_page.inner_text()
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
        active = _domain(domain.pk)
        assert active.status == DomainStatus.ACTIVE
        assert active.certificate_not_after == issued.not_valid_after_utc
        client.force_login(owner)
        section = client.get(f"/stores/{store.name}/domains/").content.decode()
        assert 'data-status="active"' in section and "Certificate valid until" in section

        domain_remove(domain=active, actor=owner)
        wait_for(
            lambda: (
                cluster.get("ingresses", "wordpress-domains", store.namespace, api="networking.k8s.io/v1")
                is None
                and not cluster.objects("certificates", store.namespace, api=CERTS)
            ),
            timeout=180,
            what="route and Certificate removed",
        )
        # The Certificate owned its Secret (--enable-certificate-owner-ref): the garbage collector removes it.
        wait_for(
            lambda: cluster.get("secrets", tls["secretName"], store.namespace) is None,
            timeout=60,
            what="the certificate's Secret removed",
        )
        wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=180, what="store ready again")
        assert cluster.get("ingresses", "wordpress", store.namespace, api="networking.k8s.io/v1") is not None
    finally:
        controller.stop()
