"""``python -m tests.support.ray_loopback start ...``: the ``ray`` CLI with every node address kept on 127.0.0.1.

Ray replaces a loopback address (``127.0.0.1``, ``localhost``) given to ``ray start`` by the
address of the machine's default-route interface (``ray._private.services.resolve_ip_for_localhost``),
so a test cluster would listen and connect on a real network address. The tests' nodes keep the
addresses they are given, and nothing leaves loopback.
"""

from __future__ import annotations

import sys

import ray._private.services as services


def _keep(host: str) -> str:
    return host


def _loopback(address: str | None = None) -> str:
    return "127.0.0.1"


if __name__ == "__main__":
    services.resolve_ip_for_localhost = _keep
    services.get_node_ip_address = _loopback
    from ray.scripts.scripts import main

    sys.exit(main())
