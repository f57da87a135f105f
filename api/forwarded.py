"""The client's address, as the failed-key limit counts it: X-Forwarded-For only from trusted proxies.

Any client can send `X-Forwarded-For: 203.0.113.7`; were it believed, a key guesser would
name a new address with each guess and never reach its limit, or name a victim's address
to have the victim locked out. So the header is read only when the connection itself
comes from a proxy named in VOICEGRAPH_TRUSTED_PROXIES, and then from the right: each
trusted proxy appends the address it was reached from, so the first address from the right
that is not a trusted proxy is the client, and whatever the client wrote further left is
ignored. `voicegraph serve` turns uvicorn's own handling of the header off (it trusts
127.0.0.1 by default), so this setting is the one that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

__all__ = ["TrustedProxies"]

BAD_PROXY = "VOICEGRAPH_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose X-Forwarded-For is believed; none by default."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks: list[_Network] = []
        for item in networks:
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(BAD_PROXY.format(item=item)) from None

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, scope: Scope) -> str:
        """The address of whoever sent the request: the peer, or past trusted proxies, the client they name."""
        peer = scope.get("client")
        host = peer[0] if peer else "unknown"
        if not self.networks or not self.trusts(host):
            return host
        forwarded = [value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"x-forwarded-for"]
        hops = [hop.strip() for hop in ",".join(forwarded).split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else host
