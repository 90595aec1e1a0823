"""The minimal protobuf codec for helm's release Secrets and DeleteOptions."""

from __future__ import annotations

import base64

import pytest

from kubeapi_double import protobuf


def test_secret_round_trip_through_the_envelope() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sh.helm.release.v1.web.v1",
            "namespace": "shop",
            "uid": "0b0c",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2025-06-01T12:00:00Z",
            "labels": {"owner": "helm", "name": "web", "version": "1"},
            "annotations": {"note": "x"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1", "controller": True}
            ],
            "finalizers": ["a/b"],
        },
        "data": {"release": base64.b64encode(b"\x00\xffbinary").decode()},
        "type": "helm.sh/release.v1",
        "immutable": False,
    }

    body = protobuf.encode_body(secret)

    assert body.startswith(b"k8s\x00")
    assert protobuf.decode_body(body) == secret


def test_decodes_hand_built_secret_bytes() -> None:
    # Field numbers from core/v1 generated.proto: Secret{1 metadata, 2 data, 3 type}; ObjectMeta{1 name, 3 ns}.
    meta = b"\x0a\x01s" + b"\x1a\x02ns"
    data_entry = b"\x0a\x01k" + b"\x12\x02hi"
    raw = (
        b"\x0a"
        + bytes([len(meta)])
        + meta
        + b"\x12"
        + bytes([len(data_entry)])
        + data_entry
        + b"\x1a\x06Opaque"
    )

    secret = protobuf.decode_secret(raw)

    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"k": base64.b64encode(b"hi").decode()},
        "type": "Opaque",
    }


def test_empty_strings_and_go_zero_time_are_omitted() -> None:
    go_zero_time = protobuf._int_field(1, -62135596800)
    meta = protobuf._len_field(2, b"") + protobuf._str_field(1, "x") + protobuf._len_field(8, go_zero_time)

    assert protobuf.decode_object_meta(meta) == {"name": "x"}


def test_delete_options_round_trip() -> None:
    options = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": -1,
        "preconditions": {"uid": "u", "resourceVersion": "7"},
        "propagationPolicy": "Background",
        "dryRun": ["All"],
    }

    assert protobuf.decode_body(protobuf.encode_body(options)) == options


def test_envelope_keeps_type_meta_and_raw_bytes() -> None:
    unknown = protobuf.Unknown("v1", "Secret", b"\x01\x02", "", "application/vnd.kubernetes.protobuf")

    assert protobuf.decode_envelope(protobuf.encode_envelope(unknown)) == unknown


@pytest.mark.parametrize("body", [b"json{}", b"k8s\x00\x0a\xff", b"k8s\x00\x0a\x05ab"])
def test_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode_body(body)


def test_unsupported_kind_is_rejected() -> None:
    body = protobuf.encode_envelope(protobuf.Unknown("apps/v1", "Deployment", b""))

    with pytest.raises(protobuf.ProtobufError, match="Deployment"):
        protobuf.decode_body(body)
