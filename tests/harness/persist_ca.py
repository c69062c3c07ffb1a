"""A small scripted ACME CA on loopback that offers only dns-persist-01 and validates it the way
Let's Encrypt's Boulder does (no test CA here supports the challenge: Debian's Pebble is 2.4).
It is a stand-in, not a CA: one issuing certificate, state in memory, no rate limits.

What it follows, from Boulder's source (github.com/letsencrypt/boulder):
- va/dns_persist.go, parseDNSPersistRecord: a TXT value is split on ";"; the issuer domain is
  the first part without spaces/tabs, lower-cased without a final dot; every parameter must be
  tag=value with a value of visible ASCII but ";"; tags are case-insensitive, a known one
  (accounturi, policy, persistuntil) may not repeat, unknown ones are ignored; accounturi is
  mandatory; persistUntil is a base-10 64-bit UNIX time.
- va/dns_persist.go, checkDNSPersistRecord: accounturi equals the account URL exactly (no
  normalisation); a wildcard needs policy=wildcard (case-insensitive); a validation after
  persistUntil fails. Records for another issuer are skipped; the first record that passes wins.
- the challenge object carries ``issuer-domain-names`` and no token; the directory advertises
  neither issuer names nor an account hash prefix.

With ``hashed=True`` it plays a CA of the later draft candidate instead: the directory advertises
``issuerDomainNames`` and ``accountHashPrefix`` and accounturi must be the hashed URI (over the
name or "*"). Records are read from a real DNS server (BIND in the tests); JWS signatures are
verified."""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.query
import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ISSUER_DOMAIN = "ca.persist.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hashed_uri(prefix: str, domain: str, thumbprint: str, account_url: str) -> str:
    digest = hashlib.sha256(bytes([len(domain)]) + domain.encode() + thumbprint.encode() + account_url.encode())
    return f"{prefix}sha-256/{b64(digest.digest())}"


@dataclass
class PersistCa:
    address: str
    port: int
    dns_server: tuple[str, int]
    hashed: bool = False
    accounts: dict[str, jose.JWK] = field(default_factory=dict)
    orders: dict[str, dict] = field(default_factory=dict)
    authzs: dict[str, dict] = field(default_factory=dict)
    certificates: dict[str, bytes] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certops persist test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((self.address, self.port), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def directory_url(self) -> str:
        return f"{self.base}/directory"

    @property
    def hash_prefix(self) -> str:
        return f"{self.base}/account-hash/"

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- validation as the draft describes it --------------------------------------------
    def txt_records(self, name: str) -> list[str]:
        response = dns.query.udp(dns.message.make_query(name, "TXT"), self.dns_server[0], port=self.dns_server[1],
                                 timeout=3)
        return [b"".join(r.strings).decode() for rrset in response.answer for r in rrset if rrset.rdtype == 16]

    def record_valid(self, identifier: str, wildcard: bool, account_url: str) -> bool:
        if self.hashed:
            thumbprint = b64(self.accounts[account_url].thumbprint())
            accepted = {hashed_uri(self.hash_prefix, identifier, thumbprint, account_url),
                        hashed_uri(self.hash_prefix, "*", thumbprint, account_url)}
        else:
            accepted = {account_url}
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        for text in self.txt_records(f"_validation-persist.{identifier}."):
            issuer, params = parse_persist_record(text)
            if issuer != ISSUER_DOMAIN or params is None:
                continue
            if params["accounturi"] not in accepted:
                continue
            if wildcard and params.get("policy", "").lower() != "wildcard":
                continue
            if "persistuntil" in params and now > params["persistuntil"]:
                continue
            return True
        return False

    def issue(self, csr_der: bytes) -> bytes:
        csr = x509.load_der_x509_csr(csr_der)
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        now = datetime.datetime.now(datetime.timezone.utc)
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.root.subject)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=6))
                .add_extension(x509.SubjectAlternativeName(list(san)), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return leaf.public_bytes(serialization.Encoding.PEM) + self.root.public_bytes(serialization.Encoding.PEM)


_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")


def parse_persist_record(text: str) -> tuple[str, dict | None]:
    """Boulder's parseDNSPersistRecord (va/dns_persist.go), restated: the issuer and the known
    parameters, or None for a malformed record."""
    issuer, *parts = text.split(";")
    issuer = issuer.strip(" \t").lower().rstrip(".")
    params: dict = {}
    for part in parts:
        part = part.strip(" \t")
        tag, sep, value = part.partition("=")
        tag, value = tag.strip(" \t").lower(), value.strip(" \t")
        if not part or not sep or not tag or not _VALUE.fullmatch(value):
            return issuer, None
        if tag in ("accounturi", "policy", "persistuntil"):
            if tag in params:
                return issuer, None
            if tag == "persistuntil":
                if not re.fullmatch(r"-?[0-9]+", value) or not -2 ** 63 <= int(value) < 2 ** 63:
                    return issuer, None
                params[tag] = int(value)
            else:
                params[tag] = value
    if not params.get("accounturi"):
        return issuer, None
    return issuer, params


def _handler(ca: PersistCa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object = None, headers: dict | None = None,
                  content_type: str = "application/json") -> None:
            data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            self.send_response(status)
            self.send_header("Replay-Nonce", secrets.token_urlsafe(16))
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._send(200)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/directory":
                self._send(200, {"newNonce": f"{ca.base}/new-nonce", "newAccount": f"{ca.base}/new-account",
                                 "newOrder": f"{ca.base}/new-order", "revokeCert": f"{ca.base}/revoke",
                                 "keyChange": f"{ca.base}/key-change",
                                 "meta": ({"issuerDomainNames": [ISSUER_DOMAIN], "accountHashPrefix": ca.hash_prefix}
                                          if ca.hashed else {})})
            else:
                self._send(204 if self.path == "/new-nonce" else 404)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            jws = jose.JWS.json_loads(body)
            protected = jws.signature.combined
            kid, jwk = protected.kid, protected.jwk
            with ca.lock:
                key = jwk if jwk is not None else ca.accounts.get(kid or "")
                if key is None or not jws.verify(key):
                    self._send(403, {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "bad signature"})
                    return
                payload = json.loads(jws.payload) if jws.payload else None
                self._route(kid, key, payload)

        def _route(self, kid: str | None, key: jose.JWK, payload: object) -> None:
            path = self.path
            if path == "/new-account":
                for url, known in ca.accounts.items():
                    if known.thumbprint() == key.thumbprint():
                        self._send(200, {"status": "valid"}, {"Location": url})
                        return
                if isinstance(payload, dict) and payload.get("onlyReturnExisting"):
                    self._send(400, {"type": "urn:ietf:params:acme:error:accountDoesNotExist"})
                    return
                url = f"{ca.base}/account/{next(ca.ids)}"
                ca.accounts[url] = key
                self._send(201, {"status": "valid"}, {"Location": url})
            elif path == "/new-order":
                order_id = str(next(ca.ids))
                authz_urls = []
                for ident in payload["identifiers"]:
                    authz_id = str(next(ca.ids))
                    value = ident["value"]
                    wildcard = value.startswith("*.")
                    ca.authzs[authz_id] = {"identifier": {"type": "dns", "value": value[2:] if wildcard else value},
                                           "wildcard": wildcard, "status": "pending", "order": order_id,
                                           "account": kid,
                                           "challenges": [{"type": "dns-persist-01", "status": "pending",
                                                           "url": f"{ca.base}/challenge/{authz_id}",
                                                           "issuer-domain-names": [ISSUER_DOMAIN]}]}
                    authz_urls.append(f"{ca.base}/authz/{authz_id}")
                ca.orders[order_id] = {"status": "pending", "identifiers": payload["identifiers"],
                                       "authorizations": authz_urls, "finalize": f"{ca.base}/finalize/{order_id}"}
                self._send(201, ca.orders[order_id], {"Location": f"{ca.base}/order/{order_id}"})
            elif path.startswith("/authz/"):
                authz = ca.authzs[path.rsplit("/", 1)[1]]
                self._send(200, {k: v for k, v in authz.items() if k not in ("order", "account")})
            elif path.startswith("/challenge/"):
                authz_id = path.rsplit("/", 1)[1]
                authz = ca.authzs[authz_id]
                ok = ca.record_valid(authz["identifier"]["value"], authz["wildcard"], authz["account"])
                ca.validations.append(f"{authz['identifier']['value']}: {'valid' if ok else 'invalid'}")
                authz["status"] = "valid" if ok else "invalid"
                authz["challenges"][0]["status"] = authz["status"]
                if not ok:
                    authz["challenges"][0]["error"] = {"type": "urn:ietf:params:acme:error:unauthorized",
                                                       "detail": "no matching _validation-persist record"}
                order = ca.orders[authz["order"]]
                states = {ca.authzs[u.rsplit("/", 1)[1]]["status"] for u in order["authorizations"]}
                order["status"] = "invalid" if "invalid" in states else ("ready" if states == {"valid"} else "pending")
                self._send(200, authz["challenges"][0])
            elif path.startswith("/order/"):
                self._send(200, ca.orders[path.rsplit("/", 1)[1]])
            elif path.startswith("/finalize/"):
                order_id = path.rsplit("/", 1)[1]
                order = ca.orders[order_id]
                if order["status"] != "ready":
                    self._send(403, {"type": "urn:ietf:params:acme:error:orderNotReady"})
                    return
                ca.certificates[order_id] = ca.issue(jose.b64decode(payload["csr"]))
                order.update(status="valid", certificate=f"{ca.base}/cert/{order_id}")
                self._send(200, order, {"Location": f"{ca.base}/order/{order_id}"})
            elif path.startswith("/cert/"):
                self._send(200, ca.certificates[path.rsplit("/", 1)[1]], content_type="application/pem-certificate-chain")
            else:
                self._send(404, {"type": "urn:ietf:params:acme:error:malformed", "detail": path})
    return Handler
