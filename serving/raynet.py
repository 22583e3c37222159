"""Where Ray listens: on 127.0.0.1 only, unless the user exposes it.

Two parts. :func:`ray_on_loopback`, in the process that starts Ray, makes Ray's node address 127.0.0.1, and
Ray's own servers (GCS, raylet, object manager, the workers' gRPC servers, the agents) bind their node
address. :func:`replica_servers_on_node_address`, in each Serve replica while it starts, makes the replica's
inter-deployment gRPC server bind the node address too: Serve binds it to ``[::]`` (every interface) and
offers no option for it. Callers reach a replica at its node address, so nothing else changes.
"""

from __future__ import annotations

import os

__all__ = ["ray_on_loopback", "replica_servers_on_node_address"]


def ray_on_loopback(on: bool = True) -> None:
    """Make a Ray started from this process listen on 127.0.0.1 only (``on``) or on the machine's address.

    Ray takes its node address from ``get_node_ip_address``, which answers 127.0.0.1 when
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is 0 (Ray's switch for single-machine use). The variable is set for
    the processes Ray starts and Ray's constant for this one (Ray reads the variable when imported)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0" if on else "1"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = not on


def replica_servers_on_node_address() -> bool:
    """In a Serve replica whose node address is loopback: bind the replica's gRPC server there instead of
    ``[::]``. Call it in the replica's ``__init__`` (Serve starts that server after it); returns whether it
    applied."""
    import ray
    from ray.serve._private import replica

    node = ray.util.get_node_ip_address()
    if not (node.startswith("127.") or node == "::1") or getattr(replica, "_evospikenet_bind", False):
        return False
    add_port = replica.add_port_to_grpc_server

    def add_port_on_node(server, address: str):
        if address.startswith("[::]:"):
            address = f"{node}:{address.rsplit(':', 1)[1]}"
        return add_port(server, address)

    replica.add_port_to_grpc_server = add_port_on_node
    replica._evospikenet_bind = True
    return True
