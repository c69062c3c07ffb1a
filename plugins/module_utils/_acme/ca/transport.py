"""HTTP + JWS transport to one ACME server, shared by every worker thread of a batch.

Why not ``acme.client.ClientNetwork``: it retries ``badNonce`` once only (at Pebble's default
5 % rejection a 100-request batch would then fail now and then), it has no deadline or
Retry-After handling for 429/503, its nonce set is not guarded for threads, and it lets
``REQUESTS_CA_BUNDLE`` override a per-session CA. We keep its JWS (``acme.jws``) and message
classes and write the few dozen lines of transport ourselves.

Guarantees:
- one ``requests.Session`` (one keep-alive pool sized for the workers) for the whole batch;
- the directory is fetched once per transport;
- ``badNonce`` is retried with the nonce the error carried, up to ``MAX_BAD_NONCE_RETRIES``;
- 503, connection failures and short 429s are retried honouring ``Retry-After`` while the
  deadline allows; a 429 ``rateLimited`` whose Retry-After is beyond ``max_retry_after`` is
  reported at once with the CA's text (retrying it for minutes helps nobody);
- response bodies are bounded (``MAX_BODY``), so a hostile server cannot exhaust memory;
- every exchange, status line, headers and body included, ends by the deadline: ``requests``
  bounds each socket read only, so a server that sends one byte every second would hold a
  worker for ever; :class:`_Watchdog` shuts the socket of an exchange that outlives it;
- signed POSTs and nonce requests never follow redirects: a signed request goes to the URL it
  was signed for, or nowhere.
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import json
import re
import socket
import threading
import time
from collections import Counter
from typing import Any, Optional, Union

try:
    import josepy as jose
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter
    from acme import jws
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ..errors import AcmeDeadlineError, AcmeProblem, AcmeTransportError
from ..waiting import Backoff, Deadline

MAX_BAD_NONCE_RETRIES = 25
MAX_BODY = 4 * 1024 * 1024
JOSE = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
USER_AGENT = "certops.acme (+https://galaxy.ansible.com/ui/repo/published/certops/acme/)"
# ASCII digits only: str.isdigit() also accepts "²" or "١", which int() and float() refuse.
_DECIMAL = re.compile(r"[0-9]{1,15}")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if _DECIMAL.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Exchange:
    """One HTTP exchange in flight: the connections it used, so they can be cut at its deadline."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        for connection in self.connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    # The plain socket's shutdown, not SSLSocket's (which drops its SSL object
                    # under the reading thread's feet): the blocked read then fails at once.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass


_CURRENT = threading.local()  # the _Exchange of the calling thread, seen by its connections


class _Watchdog:
    """One thread per transport that expires exchanges at their deadlines (a timer thread per
    request would cost a thread start for each of the thousands of requests in a batch)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    def watch(self, at: float, exchange: _Exchange) -> None:
        with self._wake:
            heapq.heappush(self._heap, (at, next(self._order), exchange))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="certops-acme-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()

    def done(self, exchange: _Exchange) -> None:
        """The exchange ended in time; under the lock, so it is never expired half way."""
        with self._wake:
            exchange.connections = None  # type: ignore[assignment]

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._stopped:
                while self._heap and (self._heap[0][2].connections is None):
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._wake.wait(60)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                _at, _order, exchange = heapq.heappop(self._heap)
                exchange.expire()


_ADAPTER_CLASS: Any = None


def _bounded_adapter(pool_maxsize: int) -> "HTTPAdapter":
    """An HTTPAdapter whose connections register with the calling thread's exchange (built on
    first use, so importing this module never needs requests)."""
    global _ADAPTER_CLASS  # pylint: disable=global-statement
    if _ADAPTER_CLASS is None:
        def tracked(base: Any) -> Any:
            class Tracked(base):
                def request(self, *args: Any, **kwargs: Any) -> Any:
                    exchange = getattr(_CURRENT, "exchange", None)
                    if exchange is not None and exchange.connections is not None:
                        exchange.connections.append(self)
                    return super().request(*args, **kwargs)
            return Tracked

        class HttpPool(urllib3.HTTPConnectionPool):
            ConnectionCls = tracked(urllib3.connection.HTTPConnection)

        class HttpsPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = tracked(urllib3.connection.HTTPSConnection)

        class BoundedAdapter(HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                super().init_poolmanager(*args, **kwargs)
                # A dict of our own: urllib3's default is module-wide.
                self.poolmanager.pool_classes_by_scheme = {"http": HttpPool, "https": HttpsPool}
        _ADAPTER_CLASS = BoundedAdapter
    adapter: HTTPAdapter = _ADAPTER_CLASS(pool_connections=2, pool_maxsize=pool_maxsize)
    return adapter


#: How long a refused connection is tried again (a CA restarting) before the CA counts as down.
REFUSED_GRACE = 3.0


def _exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps, outermost first (requests wraps urllib3, which wraps the
    socket error; urllib3's MaxRetryError keeps it as ``reason``)."""
    seen: list[BaseException] = []
    current: Optional[BaseException] = error
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        reason = getattr(current, "reason", None)
        args = getattr(current, "args", ())
        inner = reason if isinstance(reason, BaseException) else next(
            (a for a in args if isinstance(a, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    return seen


def refused(error: BaseException) -> bool:
    """Whether the connection was refused (nothing listens at the CA's address)."""
    return any(isinstance(cause, ConnectionRefusedError) for cause in _exception_chain(error))


def network_cause(error: BaseException) -> str:
    """What went wrong on the network, in a user's words: the root of the exception chain,
    not urllib3's pool internals."""
    for cause in reversed(_exception_chain(error)):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(cause, socket.gaierror):
            return f"the host name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, (socket.timeout, TimeoutError)) or "timed out" in str(cause).lower():
            return "no answer in time (connection timed out)"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    text = str(error)
    return text if len(text) <= 200 else text[:200] + "..."


class AcmeTransport:
    def __init__(self, directory_url: str, *, verify: Union[bool, str] = True,
                 timeout: float = 30.0, pool_size: int = 4, max_retry_after: float = 60.0) -> None:
        self.directory_url = directory_url
        self.verify = verify
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.session = requests.Session()
        adapter = _bounded_adapter(max(2, pool_size + 1))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._watchdog = _Watchdog()
        self._nonces: list[str] = []
        self._lock = threading.Lock()
        self._directory: Optional[dict[str, Any]] = None
        self.key: Optional[jose.JWK] = None
        self.alg: Optional[jose.JWASignature] = None
        self.account_url: Optional[str] = None
        #: requests sent, by kind ("GET /dir", "POST newOrder", ...): for results and the benchmark
        self.requests: Counter[str] = Counter()

    def close(self) -> None:
        self._watchdog.stop()
        self.session.close()

    # --- plain HTTP -----------------------------------------------------------------------
    def get(self, url: str, deadline: Deadline, *, kind: str) -> requests.Response:
        """Unauthenticated GET (renewalInfo); the caller judges the status."""
        response = self._send("GET", url, deadline, headers={"User-Agent": USER_AGENT})
        self.requests[f"GET {kind}"] += 1
        return response

    def _send(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> requests.Response:
        """One HTTP exchange with retries for transient network failures, each attempt cut off
        at the deadline however slowly the server answers."""
        backoff = deadline.backoff(0.2, 2.0, 5.0)
        refused_since: Optional[float] = None
        # Only plain GETs may follow a redirect: a signed request belongs to the URL it signs.
        kwargs.setdefault("allow_redirects", method == "GET")
        while True:
            deadline.check()
            exchange = _Exchange()
            _CURRENT.exchange = exchange
            self._watchdog.watch(deadline.at, exchange)
            try:
                response = self.session.request(
                    method, url, verify=self.verify, stream=True,
                    timeout=min(self.timeout, max(1.0, deadline.remaining())), **kwargs)
                self._read_bounded(response)
                self._refuse_redirect(response, method)
                return response
            except requests.exceptions.RequestException as error:
                if exchange.expired:
                    raise AcmeDeadlineError(f"{deadline.what} did not finish within {deadline.seconds:.0f} s "
                                            f"(the ACME server at {url} was still answering)") from None
                if refused(error):
                    # Refused again after a short grace: the CA is down, not busy - say so now
                    # rather than at the deadline (a CA restarting is back within the grace).
                    refused_since = refused_since if refused_since is not None else time.monotonic()
                    if time.monotonic() - refused_since >= REFUSED_GRACE:
                        raise AcmeTransportError(f"cannot reach the ACME server at {url}: "
                                                 f"{network_cause(error)}") from None
                self._retry_or_raise(error, url, backoff)
            finally:
                _CURRENT.exchange = None
                self._watchdog.done(exchange)

    @staticmethod
    def _refuse_redirect(response: requests.Response, method: str) -> None:
        if method != "GET" and 300 <= response.status_code < 400:
            raise AcmeTransportError(
                f"{response.url} answered {method} with a redirect ({response.status_code} to "
                f"{response.headers.get('Location', 'nowhere')!r}); a signed request is never sent "
                "to another address, so check acme_directory")

    @staticmethod
    def _retry_or_raise(error: Exception, url: str, backoff: Backoff) -> None:
        """Wait before the next attempt after a network failure, or raise the user's error."""
        if isinstance(error, requests.exceptions.SSLError):
            raise AcmeTransportError(f"TLS error talking to the ACME server at {url}: {error}. "
                                     "For a private CA set ca_path (or validate_certs: false "
                                     "for throw-away tests).") from None
        if not isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                                  requests.exceptions.ChunkedEncodingError)):
            raise AcmeTransportError(f"the exchange with the ACME server at {url} failed: {error}") from None
        # A retry that could not even start before the deadline is not made: say why instead.
        if backoff.deadline.remaining() < backoff.delay or not backoff.wait():
            raise AcmeTransportError(f"cannot reach the ACME server at {url}: {network_cause(error)}") from None

    @staticmethod
    def _read_bounded(response: requests.Response) -> None:
        declared = response.headers.get("Content-Length", "").strip()
        if _DECIMAL.fullmatch(declared) and int(declared) > MAX_BODY:
            response.close()
            raise AcmeTransportError(f"{response.url} sent a {declared}-byte body; more than "
                                     f"{MAX_BODY} bytes is not an ACME answer")
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > MAX_BODY:
                response.close()
                raise AcmeTransportError(f"{response.url} sent more than {MAX_BODY} bytes; "
                                         "that is not an ACME answer")
            chunks.append(chunk)
        response._content = b"".join(chunks)  # pylint: disable=protected-access

    def directory(self, deadline: Optional[Deadline] = None) -> dict[str, Any]:
        if self._directory is None:
            deadline = deadline or Deadline(self.timeout * 2, "reading the ACME directory")
            response = self._send("GET", self.directory_url, deadline)
            self.requests["GET directory"] += 1
            if not response.ok:
                raise AcmeProblem(response.status_code, self.directory_url, _json_or_text(response))
            body = _json_or_text(response)
            if not isinstance(body, dict) or not isinstance(body.get("newNonce"), str):
                raise AcmeTransportError(f"{self.directory_url} is not an ACME directory "
                                         "(no newNonce URL); check acme_directory")
            self._directory = body
        return self._directory

    def endpoint(self, name: str, deadline: Optional[Deadline] = None) -> str:
        """A URL from the directory; ``deadline`` bounds reading the directory the first time
        (without it a CA that does not answer would hold the caller for twice the timeout)."""
        url = self.directory(deadline).get(name)
        if not isinstance(url, str) or not url:
            raise AcmeTransportError(f"the ACME directory at {self.directory_url} has no {name!r} URL")
        return url

    # --- nonces ---------------------------------------------------------------------------
    def _keep_nonce(self, response: requests.Response) -> None:
        nonce = response.headers.get("Replay-Nonce")
        if nonce:
            with self._lock:
                self._nonces.append(nonce)

    def _take_nonce(self, deadline: Deadline) -> str:
        with self._lock:
            if self._nonces:
                return self._nonces.pop()
        url = self.endpoint("newNonce", deadline)
        response = self._send("HEAD", url, deadline)
        self.requests["HEAD newNonce"] += 1
        nonce = response.headers.get("Replay-Nonce")
        if not nonce:
            raise AcmeTransportError(f"{url} returned no Replay-Nonce header")
        return nonce

    # --- signed requests ------------------------------------------------------------------
    def set_account(self, key: jose.JWK, alg: jose.JWASignature, account_url: Optional[str]) -> None:
        self.key, self.alg, self.account_url = key, alg, account_url

    def post(self, url: str, payload: Optional[Union[dict[str, Any], bytes]], deadline: Deadline,
             *, kind: str, use_jwk: bool = False, accept: Optional[str] = None) -> requests.Response:
        """Signed POST (``payload=None`` is POST-as-GET). Returns a 2xx response or raises."""
        if self.key is None or self.alg is None:
            raise AcmeTransportError("internal: no account key set before a signed request")
        if payload is None:
            body = b""
        elif isinstance(payload, bytes):
            body = payload
        else:
            body = json.dumps(payload).encode()
        headers = {"Content-Type": JOSE, "User-Agent": USER_AGENT}
        if accept:
            headers["Accept"] = accept
        bad_nonces = 0
        while True:
            deadline.check()
            nonce = self._take_nonce(deadline)
            kid = None if use_jwk else self.account_url
            signed = jws.JWS.sign(body, key=self.key, alg=self.alg,
                                  nonce=jose.decode_b64jose(nonce), url=url, kid=kid)
            response = self._send("POST", url, deadline, data=signed.json_dumps().encode(),
                                  headers=headers)
            self.requests[f"POST {kind}"] += 1
            self._keep_nonce(response)
            if response.ok:
                return response
            problem = AcmeProblem(response.status_code, url, _json_or_text(response),
                                  parse_retry_after(response.headers.get("Retry-After")))
            if problem.code == "badNonce" and bad_nonces < MAX_BAD_NONCE_RETRIES:
                bad_nonces += 1
                continue
            wait = self._transient_wait(response, problem)
            if wait is not None and wait < deadline.remaining():
                deadline.sleep(wait)
                continue
            raise problem

    def _transient_wait(self, response: requests.Response, problem: AcmeProblem) -> Optional[float]:
        """How long to wait before retrying a load-shedding answer; None: do not retry."""
        if response.status_code not in (429, 503):
            return None
        wait = problem.retry_after if problem.retry_after is not None else 1.0
        if wait > self.max_retry_after:
            return None
        return wait


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500] if response.content else None


def mapping_field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` when it is a JSON object, else an empty one (a CA's optional objects)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """The response's JSON object, or a clear error naming what we were reading."""
    try:
        body = response.json()
    except ValueError:
        raise AcmeTransportError(f"{what} at {response.url}: the server did not answer with JSON "
                                 f"(Content-Type {response.headers.get('Content-Type')!r})") from None
    if not isinstance(body, dict):
        raise AcmeTransportError(f"{what} at {response.url}: expected a JSON object")
    return body
