"""Network namespaces and veth pairs that a test makes and removes, for real partitions.

A ``Namespace`` is kept alive by a holder process (``unshare --net sleep``); processes run in it
through ``nsenter`` (``Namespace.enter``). A ``VethLink`` joins the test's own namespace to one
of them on a /24 of 198.18.0.0/15 (RFC 2544's range for test networks), which exists only
inside these namespaces. ``cut()`` takes the far end down: packets sent into the link are then
dropped without an answer, as in a partition (neighbours are pinned, so no ARP failure turns
the drop into a quick "no route to host"); ``heal()`` brings it back.

Interfaces are only changed in a network namespace made for the test run, never in the
machine's own: ``in_private_namespace()`` says whether this run is in one (scripts/test.sh sets
CERTOPS_TEST_PRIVATE_NETNS=1 for the legs it starts under ``unshare --net``; by hand:
``unshare --net bash -c 'ip link set lo up && CERTOPS_TEST_PRIVATE_NETNS=1 pytest ...'``).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time

_counter = itertools.count(1)


#: Set by whoever started this test run in a network namespace of its own.
PRIVATE_NETNS_ENV = "CERTOPS_TEST_PRIVATE_NETNS"


def in_private_namespace() -> bool:
    """Whether this test run was started in a network namespace made for it. Only its starter
    knows (a sandbox's own namespace differs from PID 1's too), so it says so explicitly."""
    return os.environ.get(PRIVATE_NETNS_ENV) == "1"


def _ip(*args: str, prefix: tuple[str, ...] = ()) -> str:
    done = subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, text=True, timeout=10)
    return done.stdout


class Namespace:
    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "86400"], stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.readlink(f"/proc/{self.holder.pid}/ns/net") != mine:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.holder.poll() is not None:
                raise RuntimeError("unshare --net did not give the holder a namespace of its own")
            time.sleep(0.02)
        _ip("link", "set", "lo", "up", prefix=self.enter)

    @property
    def enter(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside this namespace."""
        return ("nsenter", f"--net=/proc/{self.holder.pid}/ns/net")

    def close(self) -> None:
        """The namespace goes with its last process (the callers stop theirs first)."""
        self.holder.kill()
        self.holder.wait()


class VethLink:
    """A veth pair: ``near`` here with ``<net>.1``, ``far`` in ``namespace`` with ``<net>.<host>``
    for each of ``hosts``."""

    def __init__(self, namespace: Namespace, net: str, hosts: tuple[int, ...]) -> None:
        if not re.fullmatch(r"198\.1[89]\.\d{1,3}", net):
            raise ValueError(f"{net}: test links live in 198.18.0.0/15 only")
        index = next(_counter)
        self.namespace = namespace
        self.near, self.far = f"cv{os.getpid() % 10000}n{index}", f"cv{os.getpid() % 10000}f{index}"
        self.near_address = f"{net}.1"
        self.far_addresses = tuple(f"{net}.{host}" for host in hosts)
        inside = namespace.enter
        _ip("link", "add", self.near, "type", "veth", "peer", "name", self.far)
        try:
            _ip("link", "set", self.far, "netns", str(namespace.holder.pid))
            _ip("addr", "add", f"{self.near_address}/24", "dev", self.near)
            _ip("link", "set", self.near, "up")
            for address in self.far_addresses:
                _ip("addr", "add", f"{address}/24", "dev", self.far, prefix=inside)
            _ip("link", "set", self.far, "up", prefix=inside)
            far_mac = self._mac(self.far, inside)
            near_mac = self._mac(self.near, ())
            for address in self.far_addresses:
                _ip("neigh", "replace", address, "lladdr", far_mac, "dev", self.near, "nud", "permanent")
            _ip("neigh", "replace", self.near_address, "lladdr", near_mac, "dev", self.far, "nud", "permanent",
                prefix=inside)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _mac(device: str, prefix: tuple[str, ...]) -> str:
        found = re.search(r"link/ether ([0-9a-f:]{17})", _ip("-o", "link", "show", device, prefix=prefix))
        if not found:
            raise RuntimeError(f"no MAC address for {device}")
        return found.group(1)

    def cut(self) -> None:
        _ip("link", "set", self.far, "down", prefix=self.namespace.enter)

    def heal(self) -> None:
        _ip("link", "set", self.far, "up", prefix=self.namespace.enter)

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.near], capture_output=True, timeout=10, check=False)


class Switch:
    """A bridge in a namespace of its own, with members plugged in by veth pairs: the test's own
    namespace and namespaces made for servers (each OpenBao node in one of its own), on one /24
    of 198.18.0.0/15. ``cut(member)`` takes that member's port on the bridge down: its frames, and
    frames for it, are dropped (neighbours pinned, so nobody learns quickly that it is gone), as
    when a node is partitioned from the others; ``heal(member)`` plugs it back."""

    def __init__(self, net: str) -> None:
        if not re.fullmatch(r"198\.1[89]\.\d{1,3}", net):
            raise ValueError(f"{net}: test links live in 198.18.0.0/15 only")
        self.net, self.index = net, next(_counter)
        self.namespace = Namespace()
        self.members: list[tuple[Namespace | None, str, str, str]] = []  # (namespace, address, device, port)
        _ip("link", "add", "br0", "type", "bridge", prefix=self.namespace.enter)
        _ip("link", "set", "br0", "up", prefix=self.namespace.enter)

    def plug(self, namespace: "Namespace | None", host: int) -> str:
        """Plug ``namespace`` (None: the test's own) in with address ``<net>.<host>``; returns it."""
        address = f"{self.net}.{host}"
        device, port = f"sw{os.getpid() % 10000}m{self.index}h{host}", f"sw{os.getpid() % 10000}p{self.index}h{host}"
        _ip("link", "add", device, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", str(self.namespace.holder.pid))
        inside = self.namespace.enter
        _ip("link", "set", port, "master", "br0", prefix=inside)
        _ip("link", "set", port, "up", prefix=inside)
        member = namespace.enter if namespace else ()
        if namespace is not None:
            _ip("link", "set", device, "netns", str(namespace.holder.pid))
        _ip("addr", "add", f"{address}/24", "dev", device, prefix=member)
        _ip("link", "set", device, "up", prefix=member)
        self.members.append((namespace, address, device, port))
        return address

    def pin_neighbours(self) -> None:
        """Every member knows every other's MAC for good: a cut member is silent, not unknown."""
        macs = {address: VethLink._mac(device, ns.enter if ns else ()) for ns, address, device, _port in self.members}
        for ns, address, device, _port in self.members:
            for other, mac in macs.items():
                if other != address:
                    _ip("neigh", "replace", other, "lladdr", mac, "dev", device, "nud", "permanent",
                        prefix=ns.enter if ns else ())

    def _port(self, address: str) -> str:
        return next(port for _ns, member, _device, port in self.members if member == address)

    def cut(self, address: str) -> None:
        _ip("link", "set", self._port(address), "down", prefix=self.namespace.enter)

    def heal(self, address: str) -> None:
        _ip("link", "set", self._port(address), "up", prefix=self.namespace.enter)

    def close(self) -> None:
        for namespace, _address, device, _port in self.members:
            if namespace is None:
                subprocess.run(["ip", "link", "del", device], capture_output=True, timeout=10, check=False)
        self.namespace.close()


__all__ = ["Namespace", "VethLink", "Switch", "in_private_namespace", "PRIVATE_NETNS_ENV"]
