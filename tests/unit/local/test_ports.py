"""free_port: ports chosen now and bound later by other processes must not collide."""

from __future__ import annotations

import socket
from pathlib import Path

from streams.local.broker import free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    # bind(0) handed the same port out twice within one demo; 300 draws from it collide more
    # often than not (the birthday bound over ~28,000 ephemeral ports)
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(1024 <= p < low for p in ports)
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
