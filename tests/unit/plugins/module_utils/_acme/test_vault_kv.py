"""vault_kv.KvClient against a scripted HTTP server on 127.0.0.1: a real socket whose answers
are scripted, because OpenBao cannot be told to drop a kept-alive connection or to answer with
an oversized body on cue. Reads against real OpenBao run through the whole store contract
(tests/integration/test_store_contract.py) and the cluster tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import hvac.exceptions
import pytest
import requests

from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault_kv import MAX_ANSWER_BYTES, KvClient


class ScriptedVault:
    """Answers each GET with the next (status, body, close) of its script; records the requests."""

    def __init__(self, script):
        self.script = list(script)
        self.seen: list[tuple[str, str, str]] = []
        self.bodies: list[tuple[str, object]] = []
        self.connections = 0
        vault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                vault.connections += 1

            def do_GET(self):  # noqa: N802
                vault.seen.append((self.path, self.headers.get("X-Vault-Token", ""),
                                   self.headers.get("X-Vault-Namespace", "")))
                length = int(self.headers.get("Content-Length") or 0)
                vault.bodies.append((self.command, json.loads(self.rfile.read(length)) if length else None))
                status, body, close = vault.script.pop(0)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = close  # close: as a node that drops idle connections

            do_POST = do_DELETE = do_GET  # noqa: N815

            def log_message(self, *args):
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vault():
    made = []

    def make(script):
        made.append(ScriptedVault(script))
        return made[-1]
    yield make
    for server in made:
        server.close()


RECORD = {"data": {"data": {"version": "v1"}, "metadata": {"version": 3}}}


def client(server, token="tok"):
    return SimpleNamespace(url=server.url, token=token)


def test_a_read_sends_the_token_and_namespace_and_keeps_the_connection(vault):
    server = vault([(200, RECORD, False), (200, RECORD, False)])
    reader = KvClient("secret", True, "team-a", 5)
    try:
        assert reader.read(client(server), "certops-acme/certificates/www") == RECORD
        assert reader.read(client(server), "certops-acme/certificates/api") == RECORD
    finally:
        reader.close()
    assert server.seen == [("/v1/secret/data/certops-acme/certificates/www", "tok", "team-a"),
                           ("/v1/secret/data/certops-acme/certificates/api", "tok", "team-a")]
    assert server.connections == 1


def test_a_connection_the_node_closed_while_idle_is_replaced_once(vault):
    server = vault([(200, RECORD, True), (200, RECORD, False)])
    reader = KvClient("secret", True, None, 5)
    try:
        reader.read(client(server), "a")
        assert reader.read(client(server), "b") == RECORD
    finally:
        reader.close()
    assert server.connections == 2


@pytest.mark.parametrize(("status", "error"), [
    (404, hvac.exceptions.InvalidPath), (403, hvac.exceptions.Forbidden), (503, hvac.exceptions.VaultDown),
    (500, hvac.exceptions.InternalServerError), (429, hvac.exceptions.RateLimitExceeded)])
def test_an_error_status_is_the_exception_hvac_raises_for_it(vault, status, error):
    server = vault([(status, {"errors": ["nope"]}, False)])
    reader = KvClient("secret", True, None, 5)
    try:
        with pytest.raises(error):
            reader.read(client(server), "a")
    finally:
        reader.close()


def test_an_oversized_or_non_object_answer_is_refused(vault):
    server = vault([(200, b"x" * (MAX_ANSWER_BYTES + 10), False), (200, [1, 2], False)])
    reader = KvClient("secret", True, None, 5)
    try:
        with pytest.raises(hvac.exceptions.UnexpectedError, match="over"):
            reader.read(client(server), "a")
        with pytest.raises(hvac.exceptions.UnexpectedError, match="not a JSON object"):
            reader.read(client(server), "b")
    finally:
        reader.close()


def test_a_node_that_is_not_there_is_a_connection_error_the_failover_knows():
    reader = KvClient("secret", True, None, 2)
    with pytest.raises(requests.exceptions.ConnectionError):
        reader.read(SimpleNamespace(url="http://127.0.0.1:9", token="t"), "a")


def test_a_write_carries_its_check_and_set_and_a_conflict_reads_as_hvac_words_it(vault):
    conflict = {"errors": ["check-and-set parameter did not match the current version"]}
    server = vault([(200, {"data": {"version": 4}}, False), (400, conflict, False), (204, b"", False)])
    kv = KvClient("secret", True, None, 5)
    try:
        assert kv.write(client(server), "p/locks/www", {"owner": "me"}, 3) == {"data": {"version": 4}}
        with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
            kv.write(client(server), "p/locks/www", {"owner": "me"}, 0)
        kv.remove(client(server), "p/locks/www")
    finally:
        kv.close()
    assert server.bodies == [("POST", {"data": {"owner": "me"}, "options": {"cas": 3}}),
                             ("POST", {"data": {"owner": "me"}, "options": {"cas": 0}}), ("DELETE", None)]
    assert [path for path, _token, _ns in server.seen] == ["/v1/secret/data/p/locks/www"] * 2 + [
        "/v1/secret/metadata/p/locks/www"]


def test_a_redirect_to_the_active_node_is_never_taken_for_an_answer(vault):
    """A standby that does not forward answers a write with 307 and no body: hvac follows it;
    this client must not count the write as landed, but let the failover try the next node."""
    server = vault([(307, b"", False), (307, b"", False)])
    kv = KvClient("secret", True, None, 5)
    try:
        with pytest.raises(hvac.exceptions.UnexpectedError, match="redirected"):
            kv.write(client(server), "p/locks/www", {"owner": "me"}, 0)
        with pytest.raises(hvac.exceptions.UnexpectedError, match="redirected"):
            kv.read(client(server), "p/locks/www")
    finally:
        kv.close()
