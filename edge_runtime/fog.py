"""Fog tiers: a FogGen node may be another node's cloud (kiosk -> LAN gateway -> cloud).

A question that travels up carries a small extension field (``"foggen"`` in the chat request,
ignored by servers that do not know it): its domain (the next node's calibrator reads it), the
record id (so the tiers' decision logs can be joined), and the path - the instance ids of the
FogGen nodes it passed through, this one last. A node finds itself in the path (a loop) or
the path at its maximum length and refuses the question (HTTP 508) instead of hanging.

The answer travelling down carries the upstream node's decision record; its ``provenance``
(one :class:`~edge_runtime.record.Hop` per tier) becomes the tail of this node's own.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cloud_client.protocol import fog_extension
from edge_runtime.record import Hop

EXTENSION = "foggen"  # the field name in requests and replies
MAX_PATH = 32  # longest path a node accepts at all (max_hops is usually far lower)
MAX_ID_CHARS = 64


def default_node_name() -> str:
    return socket.gethostname() or "foggen"


@dataclass(frozen=True)
class Node:
    """Who this node is: a name for people, a random id per loaded runtime for loop checks
    (names may repeat: two nodes on one host, or a copied configuration)."""

    name: str
    id: str

    @classmethod
    def new(cls, name: str | None) -> Node:
        return cls(name or default_node_name(), secrets.token_hex(8))


@dataclass(frozen=True)
class Trail:
    """The FogGen nodes a question has passed through before reaching this one."""

    path: tuple[str, ...] = ()

    def then(self, node: Node) -> Trail:
        return Trail((*self.path, node.id))

    def extension(self, *, domain: str | None, record_id: str) -> dict[str, Any]:
        """The extension field of the request this trail's last node sends upstream."""
        return fog_extension(domain=domain, record_id=record_id, path=self.path)


@dataclass(frozen=True)
class HopCheck:
    """Why a node refuses a question's path, or None (see :func:`check_path`)."""

    kind: str  # loop_detected | too_many_hops
    message: str


def check_path(trail: Trail, node: Node, max_hops: int, *, hops: int = 0) -> HopCheck | None:
    """A loop (this node already on the path) or a path at ``max_hops`` FogGen nodes (the
    path's length, or the ``hops`` count sent with it when larger)."""
    if node.id in trail.path:
        return HopCheck(
            "loop_detected",
            f"this question already passed through this node ({node.name}) - the nodes' "
            "cloud URLs form a loop; point the last tier at a cloud, not back down the chain",
        )
    seen = max(len(trail.path), hops)
    if seen + 1 > max_hops:
        return HopCheck(
            "too_many_hops",
            f"the question already passed through {seen} FogGen nodes and this node "
            f"allows at most {max_hops} (--max-hops); shorten the chain or raise the limit",
        )
    return None


def upstream_hops(
    provenance: Iterable[Mapping[str, Any]],
    *,
    url: str,
    model: str,
    letter: str,
    ms: float | None,
) -> tuple[Hop, ...]:
    """The hops of an upstream reply: its own provenance when it is a FogGen node, else one hop
    for the server itself (named by its host; the URL's path and any secret are not kept)."""
    hops = tuple(Hop.from_dict(dict(entry)) for entry in provenance)
    if hops:
        return hops
    parts = urlsplit(url)
    host = parts.hostname or "cloud"
    name = f"{host}:{parts.port}" if parts.port else host
    return (Hop(node=name, model=model, route=None, signal=None, score=None, answer=letter, ms=ms),)
