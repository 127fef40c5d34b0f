"""Decodes the few protobuf request bodies kubectl sends for built-in kinds a test creates.

``kubectl create secret|configmap|namespace`` send ``application/vnd.kubernetes.protobuf``: the magic
``k8s\\0`` and a ``runtime.Unknown`` envelope around the object's message. This decodes those three kinds
(field numbers from k8s.io/api's generated.proto) into the JSON form; anything else is refused with 415,
as a server that does not speak protobuf would.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class Unsupported(ValueError):
    """A protobuf body this server cannot decode."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, raw value) pairs of one message: ints for varints, bytes for length-delimited."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise Unsupported(f"wire type {wire}")
        out.append((number, value))
    return out


def _map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    out = {}
    for entry in entries:
        kv = dict(fields(entry))
        value = kv.get(2, b"")
        out[kv.get(1, b"").decode()] = base64.b64encode(value).decode() if binary else value.decode()
    return out


def _meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels, annotations = [], []
    for number, value in fields(data):
        if number in (1, 2, 3):
            meta[{1: "name", 2: "generateName", 3: "namespace"}[number]] = value.decode()
        elif number == 11:
            labels.append(value)
        elif number == 12:
            annotations.append(value)
    if labels:
        meta["labels"] = _map(labels)
    if annotations:
        meta["annotations"] = _map(annotations)
    return {k: v for k, v in meta.items() if v != ""}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Secret, ConfigMap or Namespace."""
    if not body.startswith(MAGIC):
        raise Unsupported("no k8s protobuf magic")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(envelope.get(1, b"")))
    api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
    raw = envelope.get(2, b"")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    parts: dict[int, list[Any]] = {}
    for number, value in fields(raw):
        parts.setdefault(number, []).append(value)
    if 1 in parts:
        obj["metadata"] = _meta(parts[1][0])
    if (api_version, kind) == ("v1", "Secret"):
        if 2 in parts:
            obj["data"] = _map(parts[2], binary=True)
        if 3 in parts:
            obj["type"] = parts[3][0].decode()
        if 4 in parts:
            obj["stringData"] = _map(parts[4])
        if 5 in parts:
            obj["immutable"] = bool(parts[5][0])
    elif (api_version, kind) == ("v1", "ConfigMap"):
        if 2 in parts:
            obj["data"] = _map(parts[2])
        if 3 in parts:
            obj["binaryData"] = _map(parts[3], binary=True)
        if 4 in parts:
            obj["immutable"] = bool(parts[4][0])
    elif (api_version, kind) == ("v1", "Namespace"):
        pass  # spec.finalizers and status are the server's
    else:
        raise Unsupported(f"{api_version}/{kind} in protobuf")
    return obj
