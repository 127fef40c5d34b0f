"""Finding rlaif.dev resources: kind aliases, ``NAME`` or ``kind/NAME``, and listing every kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlaif_operator.api.common import API_VERSION
from rlaif_operator.api.kinds import KINDS, STAGE_KINDS

if TYPE_CHECKING:
    from rlaif_operator.kube import Kube

# Every spelling kubectl accepts for a kind (Kind, kind, plural, short names) -> the Kind.
KIND_ALIASES: dict[str, str] = {
    alias.lower(): kind
    for kind, cls in KINDS.items()
    for alias in (kind, cls.PLURAL, f"{cls.PLURAL}.rlaif.dev", f"{kind}.rlaif.dev", *cls.SHORT_NAMES)
}
# Listing and table order: the pipeline, then its stages in run order.
KIND_ORDER: tuple[str, ...] = ("RLAIFPipeline", *STAGE_KINDS)


class ClusterctlError(Exception):
    """Something the user should read: the verb prints it and exits 1."""


def kind_of(alias: str) -> str:
    """The Kind an alias names (``rlp``, ``rlaifpipeline``, ``RLAIFPipeline``...)."""
    try:
        return KIND_ALIASES[alias.lower()]
    except KeyError:
        shorts = ", ".join(s for k in KIND_ORDER for s in KINDS[k].SHORT_NAMES)
        raise ClusterctlError(f"{alias!r} is not an rlaif.dev kind: one of {', '.join(KIND_ORDER)}"
                              f" (or their short names {shorts})") from None


def split_ref(ref: str) -> tuple[str | None, str]:
    """``kind/NAME`` -> (Kind, NAME); ``NAME`` -> (None, NAME)."""
    if "/" in ref:
        alias, name = ref.split("/", 1)
        if not name:
            raise ClusterctlError(f"{ref!r}: give kind/NAME")
        return kind_of(alias), name
    return None, ref


def get(kube: Kube, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    return kube.get(API_VERSION, kind, namespace, name)


def find(kube: Kube, namespace: str, ref: str) -> dict[str, Any]:
    """The resource ``ref`` names; a bare NAME is looked up under every kind and must be unique."""
    kind, name = split_ref(ref)
    if kind is not None:
        obj = get(kube, namespace, kind, name)
        if obj is None:
            raise ClusterctlError(f"{kind}/{name} not found in namespace {namespace}")
        return obj
    found = [obj for k in KIND_ORDER if (obj := get(kube, namespace, k, name)) is not None]
    if not found:
        raise ClusterctlError(f"no rlaif.dev resource named {name} in namespace {namespace}"
                              " (`rlaif status` lists them)")
    if len(found) > 1:
        kinds = [o["kind"] for o in found]
        raise ClusterctlError(f"{name} is ambiguous in namespace {namespace}: there is a {' and a '.join(kinds)};"
                              f" say which: {' or '.join(f'{k.lower()}/{name}' for k in kinds)}")
    return found[0]


def list_all(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    """Every rlaif.dev resource in the namespace, pipelines first (each item carries its kind)."""
    out = []
    for kind in KIND_ORDER:
        for item in kube.list(API_VERSION, kind, namespace):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", API_VERSION)
            out.append(item)
    return out
