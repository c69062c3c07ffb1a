"""Transport behaviour under faults Pebble cannot produce (503/429 with Retry-After, oversize
bodies, a server that goes away). A scripted ACME-shaped HTTP server on 127.0.0.1 plays the CA:
a real server and real sockets, but its answers are scripted, because no ACME server that runs
here can be told to shed load or misbehave on cue."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import josepy as jose
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import (
    AcmeDeadlineError, AcmeProblem, AcmeTransportError)
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import AcmeTransport
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline


class ScriptedCA:
    """Answers POST /order with the scripted responses in turn, then 201 forever."""

    def __init__(self, script):
        self.script = list(script)
        self.posts = 0
        self.nonce = 0
        ca = self

        class Handler(BaseHTTPRequestHandler):
            def _nonce(self):
                ca.nonce += 1
                self.send_header("Replay-Nonce", jose.b64encode(f"n{ca.nonce}".encode()).decode())

            def do_GET(self):  # noqa: N802
                body = json.dumps({"newNonce": f"{ca.url}/nonce", "newOrder": f"{ca.url}/order"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):  # noqa: N802
                self.send_response(200)
                self._nonce()
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ca.posts += 1
                status, headers, body = ca.script.pop(0) if ca.script else (201, {}, {"status": "pending"})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self._nonce()
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
                if "Content-Length" not in headers:  # a scripted one replaces it (HTTP/1.0: read to close)
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def problem(kind, detail="scripted"):
    return {"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail}


@pytest.fixture
def ca_factory():
    made = []

    def make(script):
        made.append(ScriptedCA(script))
        return made[-1]
    yield make
    for ca in made:
        ca.close()


def transport_for(ca, **kwargs):
    transport = AcmeTransport(f"{ca.url}/dir", verify=False, timeout=5, **kwargs)
    transport.set_account(jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), jose.ES256, f"{ca.url}/acct/1")
    return transport


def test_bad_nonce_is_retried_until_a_request_goes_through(ca_factory):
    ca = ca_factory([(400, {}, problem("badNonce"))] * 6)
    response = transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")
    assert response.status_code == 201 and ca.posts == 7


def test_503_with_retry_after_is_honoured_within_the_deadline(ca_factory):
    ca = ca_factory([(503, {"Retry-After": "1"}, problem("serverInternal", "busy"))] * 2)
    started = time.monotonic()
    response = transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")
    assert response.status_code == 201
    assert time.monotonic() - started >= 2.0  # waited as the server asked, twice


def test_a_short_429_is_retried_but_a_long_rate_limit_is_reported_at_once(ca_factory):
    ca = ca_factory([(429, {"Retry-After": "1"}, problem("rateLimited", "slow down"))])
    assert transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder").status_code == 201
    ca = ca_factory([(429, {"Retry-After": "3600"}, problem("rateLimited", "too many certificates"))])
    started = time.monotonic()
    with pytest.raises(AcmeProblem) as caught:
        transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")
    assert time.monotonic() - started < 2
    assert "rateLimited" in str(caught.value) and "too many certificates" in str(caught.value)
    assert "retry after 3600 s" in str(caught.value)


def test_a_wait_beyond_the_deadline_is_a_clear_error_not_a_hang(ca_factory):
    ca = ca_factory([(503, {"Retry-After": "30"}, problem("serverInternal", "maintenance"))])
    started = time.monotonic()
    with pytest.raises(AcmeProblem, match="maintenance"):
        transport_for(ca).post(f"{ca.url}/order", {}, Deadline(2, "t"), kind="newOrder")
    assert time.monotonic() - started < 2


def test_an_oversize_body_is_refused(ca_factory):
    ca = ca_factory([(201, {}, b"x" * (5 * 1024 * 1024))])
    with pytest.raises(AcmeTransportError, match="not an ACME answer"):
        transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")


def test_a_problem_that_is_not_json_keeps_the_servers_words(ca_factory):
    ca = ca_factory([(500, {"Content-Type": "text/html"}, b"<h1>Gateway exploded</h1>")])
    with pytest.raises(AcmeProblem, match="Gateway exploded"):
        transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")


def test_a_server_that_went_away_fails_clearly_at_the_deadline(ca_factory):
    ca = ca_factory([])
    transport = transport_for(ca)
    transport.directory()
    ca.close()
    started = time.monotonic()
    with pytest.raises((AcmeTransportError, AcmeDeadlineError), match="cannot reach the ACME server|did not finish"):
        transport.post(f"{ca.url}/order", {}, Deadline(2, "the batch"), kind="newOrder")
    assert time.monotonic() - started < 5


def test_a_ca_that_never_answered_fails_at_the_callers_deadline_not_the_directorys_own(ca_factory):
    """The first signed request reads the directory; it must be bounded by the deadline the
    caller gave (a second CA is waiting), not by the directory's default of twice the timeout."""
    from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import AccountKey, find_account
    from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import generate_private_key
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AcmeTransport(f"http://127.0.0.1:{port}/directory", timeout=30)
    started = time.monotonic()
    with pytest.raises(AcmeTransportError, match="cannot reach the ACME server"):
        find_account(transport, AccountKey.from_key(generate_private_key("ec256")), Deadline(1, "reaching the CA"))
    assert time.monotonic() - started < 10, "bounded by the 60 s directory default, not the 1 s given"


def open_scripted_order(ca_factory, identifier, challenge, challenge_type="http-01"):
    """Open an order for x.example.com against a CA whose one authorization names
    ``identifier`` and offers ``challenge``."""
    from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
    from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, open_order
    ca = ca_factory([])
    ca.script.extend([
        (201, {"Location": f"{ca.url}/order/1"}, {"status": "pending", "authorizations": [f"{ca.url}/authz/1"],
                                                  "finalize": f"{ca.url}/finalize/1"}),
        (200, {}, {"status": "pending", "identifier": {"type": "dns", "value": identifier},
                   "challenges": [dict(challenge, type=challenge_type, url=f"{ca.url}/chall/1")]})])
    request = OrderRequest("x", normalize_names(["x.example.com"]), b"", challenge=challenge_type)
    return open_order(transport_for(ca), request, "thumb", Deadline(10, "t"))


def test_a_token_that_is_not_base64url_is_refused_before_anything_uses_it(ca_factory):
    from ansible_collections.certops.acme.plugins.module_utils._acme.errors import OrderError
    with pytest.raises(OrderError, match="not base64url"):
        open_scripted_order(ca_factory, "x.example.com", {"token": "../../etc/passwd"})


def test_an_order_without_required_fields_is_a_clear_error_not_a_keyerror(ca_factory):
    from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
    from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, open_order
    ca = ca_factory([])
    ca.script.append((201, {"Location": f"{ca.url}/order/1"}, {"status": "pending"}))
    with pytest.raises(AcmeTransportError, match="no usable 'authorizations' field"):
        open_order(transport_for(ca), OrderRequest("x", normalize_names(["x.example.com"]), b""), "t",
                   Deadline(10, "t"))


def test_a_success_that_is_not_json_is_a_clear_error(ca_factory):
    from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
    from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, open_order
    ca = ca_factory([(201, {"Content-Type": "text/html", "Location": "x"}, b"<html>welcome</html>")])
    with pytest.raises(AcmeTransportError, match="did not answer with JSON"):
        open_order(transport_for(ca), OrderRequest("x", normalize_names(["x.example.com"]), b""), "t",
                   Deadline(10, "t"))


class DrippingServer:
    """A real socket server that answers every request one byte at a time, ``interval`` seconds
    apart, for ever: with the status line and headers (``where="head"``) or with the body after
    complete headers (``where="body"``). requests' read timeout restarts at every byte, so only
    a bound on the whole exchange ends this."""

    def __init__(self, where, interval=0.3):
        self.where, self.interval = where, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ignored = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            try:
                if self.where == "body":
                    conn.sendall(head)
                    head = b"{" + b" " * 100000
                for byte in head:
                    if self.stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.interval)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize("where", ["head", "body"])
def test_a_ca_that_drips_one_byte_at_a_time_is_cut_off_at_the_deadline(where):
    server = DrippingServer(where)
    try:
        transport = AcmeTransport(f"{server.url}/dir", verify=False, timeout=5)
        started = time.monotonic()
        with pytest.raises(AcmeDeadlineError, match="did not finish within 2 s"):
            transport.directory(Deadline(2, "reading the directory"))
        assert time.monotonic() - started < 3.5
    finally:
        server.close()


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "1\u00b2", "\uff11"])
def test_retry_after_counts_only_ascii_digits(value):
    from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import parse_retry_after
    assert parse_retry_after(value) is None
    assert parse_retry_after("7") == 7.0


@pytest.mark.parametrize("header", ["Retry-After", "Content-Length"])
@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u00b9\u00b2"])  # digits in ISO-8859-1, as headers travel
def test_non_ascii_digits_in_numeric_headers_are_not_numbers(ca_factory, header, value):
    ca = ca_factory([(503, {header: value}, problem("serverInternal", "odd"))])
    # One more transient answer, then 201: no raw ValueError escapes (it used to lose the whole
    # batch's results).
    response = transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")
    assert response.status_code == 201


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_signed_post_never_follows_a_redirect(ca_factory, status):
    elsewhere = ca_factory([])
    ca = ca_factory([(status, {"Location": f"{elsewhere.url}/order"}, b"")])
    with pytest.raises(AcmeTransportError, match="never sent to another address"):
        transport_for(ca).post(f"{ca.url}/order", {}, Deadline(10, "t"), kind="newOrder")
    assert elsewhere.posts == 0 and ca.posts == 1


def test_an_authorization_for_a_name_not_in_the_order_is_refused(ca_factory):
    from ansible_collections.certops.acme.plugins.module_utils._acme.errors import OrderError
    with pytest.raises(OrderError, match="'victim.example.net', which this order does not name"):
        open_scripted_order(ca_factory, "victim.example.net", {"token": "abc"}, "dns-01")


def test_closing_the_transport_ends_its_watchdog_thread(ca_factory):
    ca = ca_factory([])
    before = set(threading.enumerate())
    transport = transport_for(ca)
    transport.directory(Deadline(5, "t"))
    # Only this transport's: other tests' transports may still have theirs.
    watchdogs = [t for t in set(threading.enumerate()) - before if t.name == "certops-acme-watchdog"]
    assert len(watchdogs) == 1
    transport.close()
    for thread in watchdogs:
        thread.join(timeout=2)
    assert not [t for t in watchdogs if t.is_alive()], "a closed transport left its watchdog running"


def test_an_unreachable_ca_is_described_by_its_cause_not_by_urllib3_internals():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AcmeTransport(f"http://127.0.0.1:{port}/directory", timeout=5)
    with pytest.raises(AcmeTransportError) as refused:
        transport.directory(Deadline(0.5, "reaching the CA"))
    message = str(refused.value)
    assert f"cannot reach the ACME server at http://127.0.0.1:{port}/directory: connection refused" in message
    assert "HTTPConnectionPool" not in message and "NewConnectionError" not in message and "object at 0x" not in message


def test_a_name_that_does_not_resolve_says_so():
    """The chain requests builds for a failed lookup (urllib3's MaxRetryError keeps the socket
    error as its reason); built here because a lookup's outcome depends on the machine."""
    import urllib3
    from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import network_cause
    lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    pool = urllib3.HTTPConnectionPool("ca.example.invalid", 80)
    wrapped = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/directory", lookup))
    assert network_cause(wrapped) == "the host name does not resolve (Name or service not known)"
