"""A TCP relay on loopback that a test can cut or slow down, between a client and a real server.

``cut()`` holds every byte in both directions, on open connections and new ones alike, and
``heal()`` lets the held bytes through: what a client sees of a partition that drops packets
until it heals (TCP sends again; the server gets the request late). ``delay`` slows every
chunk: a store that answers, but too late. Used where the client cannot be moved into a
network namespace of its own (an engine object inside the test process).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable


class Relay:
    def __init__(self, target: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self._server = socket.create_server(listen)
        self.address = self._server.getsockname()[:2]
        self.delay = 0.0
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def cut(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _peer = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), name="relay-conn", daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._open.wait()  # a new connection in a cut waits too: its SYN would be dropped
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets += [client, upstream]
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), name="relay-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                self._open.wait()
                if self.delay:
                    time.sleep(self.delay)
                self._open.wait()
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


__all__ = ["Relay", "wait_until"]
