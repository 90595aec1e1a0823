"""Minimal Kubernetes protobuf codec for the messages helm sends as protobuf.

Helm stores releases in Secrets through a client-go clientset configured for
``application/vnd.kubernetes.protobuf``, so POST/PUT bodies of release Secrets and
the DeleteOptions of their DELETE are protobuf. Only the messages helm uses are
covered: the ``k8s\\0`` envelope with ``runtime.Unknown``, ``core/v1.Secret`` (with
``ObjectMeta``) and ``meta/v1.DeleteOptions``. Field numbers follow
``k8s.io/api/core/v1/generated.proto`` and ``apimachinery/.../meta/v1/generated.proto``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ENVELOPE_MAGIC = b"k8s\x00"
PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_WT_VARINT = 0
_WT_FIXED64 = 1
_WT_LEN = 2
_WT_FIXED32 = 5
# Go's zero time.Time is year 1; k8s marshals it rather than omitting it.
_GO_ZERO_TIME_SECONDS = -62135596800


class ProtobufError(ValueError):
    """Raised when bytes are not a well-formed message of the expected shape."""


@dataclass(frozen=True)
class Unknown:
    """``runtime.Unknown``: the typed wrapper inside the ``k8s\\0`` envelope."""

    api_version: str
    kind: str
    raw: bytes
    content_encoding: str = ""
    content_type: str = ""


# --- wire format -------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for every field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 0x7
        value: int | bytes
        if wire_type == _WT_VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == _WT_LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == _WT_FIXED64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire_type == _WT_FIXED32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def _as_int64(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ProtobufError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _as_bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited field")
    return value


def _as_str(value: int | bytes) -> str:
    return _as_bytes(value).decode("utf-8")


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _WT_LEN) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _WT_VARINT) + _varint(value)


def _str_field(number: int, value: str | None) -> bytes:
    return _len_field(number, value.encode("utf-8")) if value else b""


def _map_field(number: int, mapping: dict[str, bytes]) -> bytes:
    # Go marshals map entries sorted by key; doing the same keeps output deterministic.
    return b"".join(
        _len_field(number, _len_field(1, key.encode("utf-8")) + _len_field(2, mapping[key]))
        for key in sorted(mapping)
    )


def _decode_map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, raw in _iter_fields(data):
        if number == 1:
            key = _as_str(raw)
        elif number == 2:
            value = _as_bytes(raw)
    return key, value


# --- envelope ----------------------------------------------------------------------


def decode_envelope(body: bytes) -> Unknown:
    """Split a ``k8s\\0`` + ``runtime.Unknown`` body into its type and raw object bytes."""
    if not body.startswith(ENVELOPE_MAGIC):
        raise ProtobufError("missing k8s protobuf envelope magic")
    api_version = kind = content_encoding = content_type = ""
    raw = b""
    for number, _, value in _iter_fields(body[len(ENVELOPE_MAGIC) :]):
        if number == 1:
            for type_number, _, type_value in _iter_fields(_as_bytes(value)):
                if type_number == 1:
                    api_version = _as_str(type_value)
                elif type_number == 2:
                    kind = _as_str(type_value)
        elif number == 2:
            raw = _as_bytes(value)
        elif number == 3:
            content_encoding = _as_str(value)
        elif number == 4:
            content_type = _as_str(value)
    return Unknown(api_version, kind, raw, content_encoding, content_type)


def encode_envelope(unknown: Unknown) -> bytes:
    """Wrap raw object bytes in ``runtime.Unknown`` and the ``k8s\\0`` magic."""
    type_meta = _str_field(1, unknown.api_version) + _str_field(2, unknown.kind)
    message = (
        _len_field(1, type_meta)
        + _len_field(2, unknown.raw)
        + _str_field(3, unknown.content_encoding)
        + _str_field(4, unknown.content_type)
    )
    return ENVELOPE_MAGIC + message


# --- meta/v1 -----------------------------------------------------------------------


def _decode_time(data: bytes) -> str | None:
    seconds = 0
    for number, _, value in _iter_fields(data):
        if number == 1:
            seconds = _as_int64(value)
    if seconds <= _GO_ZERO_TIME_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_time(value: str) -> bytes:
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return _int_field(1, int(moment.timestamp()))


def _decode_owner_reference(data: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for number, _, value in _iter_fields(data):
        if number in names:
            ref[names[number]] = _as_str(value)
        elif number == 6:
            ref["controller"] = bool(value)
        elif number == 7:
            ref["blockOwnerDeletion"] = bool(value)
    return ref


def _encode_owner_reference(ref: dict[str, Any]) -> bytes:
    out = (
        _str_field(1, ref.get("kind"))
        + _str_field(3, ref.get("name"))
        + _str_field(4, ref.get("uid"))
        + _str_field(5, ref.get("apiVersion"))
    )
    if "controller" in ref:
        out += _int_field(6, int(bool(ref["controller"])))
    if "blockOwnerDeletion" in ref:
        out += _int_field(7, int(bool(ref["blockOwnerDeletion"])))
    return out


_META_STRINGS = {1: "name", 2: "generateName", 3: "namespace", 4: "selfLink", 5: "uid", 6: "resourceVersion"}


def decode_object_meta(data: bytes) -> dict[str, Any]:
    """Decode ``ObjectMeta`` into its JSON form, omitting empty fields like the API does."""
    meta: dict[str, Any] = {}
    for number, _, value in _iter_fields(data):
        if number in _META_STRINGS:
            text = _as_str(value)
            if text:
                meta[_META_STRINGS[number]] = text
        elif number == 7:
            if _as_int64(value):
                meta["generation"] = _as_int64(value)
        elif number in (8, 9):
            stamp = _decode_time(_as_bytes(value))
            if stamp:
                meta["creationTimestamp" if number == 8 else "deletionTimestamp"] = stamp
        elif number == 10:
            meta["deletionGracePeriodSeconds"] = _as_int64(value)
        elif number in (11, 12):
            key, raw = _decode_map_entry(_as_bytes(value))
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = raw.decode("utf-8")
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_decode_owner_reference(_as_bytes(value)))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_as_str(value))
    return meta


def encode_object_meta(meta: dict[str, Any]) -> bytes:
    """Encode the JSON form of ``ObjectMeta`` (managedFields are not carried)."""
    out = b"".join(_str_field(number, meta.get(name)) for number, name in _META_STRINGS.items())
    if meta.get("generation"):
        out += _int_field(7, int(meta["generation"]))
    if meta.get("creationTimestamp"):
        out += _len_field(8, _encode_time(meta["creationTimestamp"]))
    if meta.get("deletionTimestamp"):
        out += _len_field(9, _encode_time(meta["deletionTimestamp"]))
    if meta.get("deletionGracePeriodSeconds") is not None:
        out += _int_field(10, int(meta["deletionGracePeriodSeconds"]))
    for number, name in ((11, "labels"), (12, "annotations")):
        mapping = meta.get(name) or {}
        out += _map_field(number, {key: str(value).encode("utf-8") for key, value in mapping.items()})
    for ref in meta.get("ownerReferences") or []:
        out += _len_field(13, _encode_owner_reference(ref))
    for finalizer in meta.get("finalizers") or []:
        out += _str_field(14, finalizer)
    return out


# --- core/v1.Secret ----------------------------------------------------------------


def decode_secret(raw: bytes) -> dict[str, Any]:
    """Decode a ``core/v1.Secret`` message into the JSON object the API would accept."""
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {}}
    for number, _, value in _iter_fields(raw):
        if number == 1:
            secret["metadata"] = decode_object_meta(_as_bytes(value))
        elif number == 2:
            key, data = _decode_map_entry(_as_bytes(value))
            secret.setdefault("data", {})[key] = base64.b64encode(data).decode("ascii")
        elif number == 3:
            if _as_str(value):
                secret["type"] = _as_str(value)
        elif number == 4:
            key, data = _decode_map_entry(_as_bytes(value))
            secret.setdefault("stringData", {})[key] = data.decode("utf-8")
        elif number == 5:
            secret["immutable"] = bool(value)
    return secret


def encode_secret(secret: dict[str, Any]) -> bytes:
    """Encode the JSON form of a Secret as a ``core/v1.Secret`` message (no envelope)."""
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    string_data = {key: value.encode("utf-8") for key, value in (secret.get("stringData") or {}).items()}
    out = _len_field(1, encode_object_meta(secret.get("metadata") or {}))
    out += _map_field(2, data)
    out += _str_field(3, secret.get("type"))
    out += _map_field(4, string_data)
    if "immutable" in secret:
        out += _int_field(5, int(bool(secret["immutable"])))
    return out


# --- meta/v1.DeleteOptions ---------------------------------------------------------


def decode_delete_options(raw: bytes) -> dict[str, Any]:
    """Decode ``meta/v1.DeleteOptions`` into its JSON form."""
    options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    for number, _, value in _iter_fields(raw):
        if number == 1:
            options["gracePeriodSeconds"] = _as_int64(value)
        elif number == 2:
            preconditions: dict[str, str] = {}
            for pre_number, _, pre_value in _iter_fields(_as_bytes(value)):
                if pre_number == 1 and _as_str(pre_value):
                    preconditions["uid"] = _as_str(pre_value)
                elif pre_number == 2 and _as_str(pre_value):
                    preconditions["resourceVersion"] = _as_str(pre_value)
            options["preconditions"] = preconditions
        elif number == 3:
            options["orphanDependents"] = bool(value)
        elif number == 4:
            if _as_str(value):
                options["propagationPolicy"] = _as_str(value)
        elif number == 5:
            options.setdefault("dryRun", []).append(_as_str(value))
    return options


def encode_delete_options(options: dict[str, Any]) -> bytes:
    """Encode the JSON form of ``DeleteOptions`` as a protobuf message (no envelope)."""
    out = b""
    if options.get("gracePeriodSeconds") is not None:
        out += _int_field(1, int(options["gracePeriodSeconds"]))
    if options.get("preconditions") is not None:
        pre = options["preconditions"]
        out += _len_field(2, _str_field(1, pre.get("uid")) + _str_field(2, pre.get("resourceVersion")))
    if options.get("orphanDependents") is not None:
        out += _int_field(3, int(bool(options["orphanDependents"])))
    out += _str_field(4, options.get("propagationPolicy"))
    for mode in options.get("dryRun") or []:
        out += _str_field(5, mode)
    return out


_DECODERS = {"Secret": decode_secret, "DeleteOptions": decode_delete_options}


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode an enveloped protobuf request body of a supported kind into JSON form."""
    unknown = decode_envelope(body)
    decoder = _DECODERS.get(unknown.kind)
    if decoder is None:
        raise ProtobufError(f"protobuf bodies of kind {unknown.kind!r} are not supported")
    obj = decoder(unknown.raw)
    obj["apiVersion"] = unknown.api_version or obj["apiVersion"]
    return obj


def encode_body(obj: dict[str, Any]) -> bytes:
    """Encode a Secret or DeleteOptions JSON object as an enveloped protobuf body."""
    kind = obj.get("kind", "")
    encoders = {"Secret": encode_secret, "DeleteOptions": encode_delete_options}
    if kind not in encoders:
        raise ProtobufError(f"protobuf bodies of kind {kind!r} are not supported")
    return encode_envelope(Unknown(obj.get("apiVersion", "v1"), kind, encoders[kind](obj)))
