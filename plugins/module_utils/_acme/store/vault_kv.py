"""The store's own KV v2 requests (read, check-and-set write, remove) on a kept-alive
``http.client`` connection per thread and node: every request a batch makes per certificate.

Why not hvac, as for everything else (lists, log-in, policies, a node reached through a proxy):
a request through hvac and requests cost about twice the client CPU of the same request on a
bare connection (request preparation, hooks, adapters, a scan of the environment per request),
and on a controller that shares its cores with the store that CPU is the run's time
(bench/store.py; docs/performance.md has the figures). What these requests need is small: the
token header, a JSON body, the status mapped to the same hvac exceptions the store's failover
already handles (``VaultStore._call``), and a bounded answer.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
import urllib.parse
from typing import Any, Optional

try:
    import hvac.exceptions
    import requests
    import requests.certs
except ImportError:  # VaultStore() names the missing package
    pass

#: The most a KV answer may hold: a certificate record is a few KiB and its fields are bounded
#: again by record_checks; Raft refuses entries over 1 MiB anyway.
MAX_ANSWER_BYTES = 2 * 1024 * 1024


class KvClient:
    """KV v2 requests to the node an hvac client points at, with that client's token."""

    def __init__(self, mount: str, verify: Any, namespace: Optional[str], timeout: float) -> None:
        self.mount = mount
        self.namespace = namespace
        self.timeout = timeout
        self._context = _ssl_context(verify)
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._guard = threading.Lock()

    def read(self, client: Any, path: str) -> dict[str, Any]:
        """GET ``data/PATH``: the JSON answer, as hvac's read_secret_version returns it."""
        return self._send(client, "GET", f"data/{path}", None)

    def write(self, client: Any, path: str, data: dict[str, Any], cas: Optional[int]) -> dict[str, Any]:
        """POST ``data/PATH`` (only onto KV version ``cas`` when given): the JSON answer, as
        hvac's create_or_update_secret returns it."""
        body: dict[str, Any] = {"data": data}
        if cas is not None:
            body["options"] = {"cas": cas}
        return self._send(client, "POST", f"data/{path}", body)

    def remove(self, client: Any, path: str) -> None:
        """DELETE ``metadata/PATH``: the secret with every version."""
        self._send(client, "DELETE", f"metadata/{path}", None)

    def _send(self, client: Any, method: str, where: str, body: Optional[dict[str, Any]]) -> dict[str, Any]:
        """hvac's exceptions for an error status; requests' ConnectionError or Timeout when the
        node cannot be reached."""
        target = f"/v1/{self.mount}/{urllib.parse.quote(where)}"
        headers = {"X-Vault-Token": client.token or "", "X-Vault-Request": "true"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection, reused = self._connection(client.url)
            try:
                connection.request(method, target, body=payload, headers=headers)
                response = connection.getresponse()
                answer = response.read(MAX_ANSWER_BYTES + 1)
                break
            except TimeoutError as error:
                self._drop(client.url)
                raise requests.exceptions.Timeout(str(error)) from None
            except (OSError, http.client.HTTPException) as error:
                self._drop(client.url)
                # A kept-alive connection the node closed while idle fails on first use: once
                # more on a new one before the node counts as unreachable. (A write sent again
                # this way that had landed conflicts with itself, which every caller handles
                # as written: VaultStore._cas_update.)
                if attempt == 1 and reused and not isinstance(error, ssl.SSLCertVerificationError):
                    continue
                raise requests.exceptions.ConnectionError(str(error)) from None
        if len(answer) > MAX_ANSWER_BYTES:
            self._drop(client.url)
            raise hvac.exceptions.UnexpectedError(f"the answer to {method} {target} is over {MAX_ANSWER_BYTES} bytes")
        text = answer.decode("utf-8", "replace")
        try:
            found = json.loads(text) if text.strip() else {}
        except ValueError:
            found = None
        if 300 <= response.status < 400:
            # A standby that does not forward sends the client to the active node. hvac would
            # follow; here the failover (VaultStore._call) goes on to the next node, and the
            # store keeps asking the node that answered. Never taken for an answer: a write
            # redirected has not landed.
            raise hvac.exceptions.UnexpectedError(f"{method} {target} was redirected "
                                                  f"({response.status}) to the active node")
        if response.status >= 400 or response.status < 200:
            errors = found.get("errors") if isinstance(found, dict) else None
            errors = [str(e)[:300] for e in errors] if isinstance(errors, list) and errors else None
            raise hvac.exceptions.VaultError.from_status(response.status, None if errors else text[:300],
                                                         errors=errors, method=method, url=target)
        if not isinstance(found, dict):
            raise hvac.exceptions.UnexpectedError(f"the answer to {method} {target} is not a JSON object")
        return found

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, bool]:
        connections = self._local.__dict__.setdefault("connections", {})
        found = connections.get(url)
        if found is not None:
            return found, True
        parts = urllib.parse.urlsplit(url)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=self.timeout,
                                                     context=self._context)
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=self.timeout)
        connections[url] = connection
        with self._guard:
            self._opened.append(connection)
        return connection, False

    def _drop(self, url: str) -> None:
        connection = self._local.__dict__.get("connections", {}).pop(url, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        with self._guard:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """The trust requests would use for ``verify``: certifi's bundle for True (as requests does),
    the given file or directory, or none at all for False."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context(cafile=requests.certs.where())


__all__ = ["KvClient", "MAX_ANSWER_BYTES"]
