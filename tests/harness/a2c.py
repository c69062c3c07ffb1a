"""acme2certifier (PyPI) on loopback: a second real ACME server, for what Pebble 2.4 lacks -
ARI (RFC 9773 renewalInfo) and certificate profiles.

It runs from its own virtualenv (scripts/setup.sh makes .venv-a2c) with its OpenSSL CA handler
and a CA this harness generates, serving plain HTTP on 127.0.0.1 through wsgiref. Challenge
validation is switched off (``challenge_validation_disable`` with the server's documented
test-only override): challenges are proven against Pebble elsewhere; here the subject is the
renewal lifecycle. ``renewal_force`` makes the server put every certificate's ARI window in
the past (the CA-initiated early renewal of RFC 9773 §4.2).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .processes import stop_pidfile, wait_port

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("CERTOPS_A2C_VENV", REPO / ".venv-a2c"))
PROFILES = {"classic": "90-day certificates", "shortlived": "6-day certificates"}

# The server, plus a record of every signed request's payload (requests.jsonl): the server
# itself accepts fields it does not use, such as ``replaces``, without logging them.
SERVER = textwrap.dedent('''
    import base64, io, json, sys
    from wsgiref.simple_server import make_server
    from acme2certifier.share import acme2certifier_wsgi as app

    def recorded(environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                payload = json.loads(body).get("payload", "")
                text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode() if payload else ""
                with open("requests.jsonl", "a") as record:
                    record.write(json.dumps({"path": environ.get("PATH_INFO"), "payload": text}) + "\\n")
            except ValueError:
                pass
        return app.application(environ, start_response)

    server = make_server("127.0.0.1", int(sys.argv[1]), recorded, handler_class=app.get_handler_cls())
    server.serve_forever()
''')


@dataclass
class A2cServer:
    directory_url: str
    port: int
    state: Path
    pidfile: Path
    log: Path

    def stop(self) -> None:
        stop_pidfile(self.pidfile)

    def new_orders(self) -> list[dict]:
        """The payloads of every newOrder the server received, in order."""
        record = self.state / "requests.jsonl"
        lines = record.read_text().splitlines() if record.exists() else []
        entries = [json.loads(line) for line in lines]
        return [json.loads(e["payload"]) for e in entries if e["path"].endswith("/neworders")]


def _make_ca(state: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certops test issuing CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    crl = (x509.CertificateRevocationListBuilder().issuer_name(name).last_update(now)
           .next_update(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    (state / "ca-crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    key_path, cert_path = state / "ca-key.pem", state / "ca-cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def start(state: Path, port: int, renewal_force: bool = False, validity_days: int = 90,
          caa_identities: tuple[str, ...] = ()) -> A2cServer:
    state.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = (state / "ca-key.pem", state / "ca-cert.pem")
    if not key_path.exists():
        key_path, cert_path = _make_ca(state)
    (state / "certs").mkdir(exist_ok=True)
    config = state / "acme_srv.cfg"
    config.write_text(textwrap.dedent(f"""
        [DEFAULT]
        debug: True

        [Nonce]
        nonce_check_disable: False

        [CAhandler]
        handler_module: acme2certifier.cahandlers.openssl_ca_handler
        issuing_ca_key: {key_path}
        issuing_ca_cert: {cert_path}
        issuing_ca_crl: {state / 'ca-crl.pem'}
        ca_cert_chain_list: ["{cert_path}"]
        cert_save_path: {state / 'certs'}
        cert_validity_days: {validity_days}

        [DBhandler]
        handler_module: acme2certifier.dbhandlers.wsgi_handler
        dbfile: {state / 'acme_srv.db'}

        [Directory]
        url: http://127.0.0.1:{port}
        {"caaidentities: " + json.dumps(list(caa_identities)) if caa_identities else ""}

        [Challenge]
        challenge_validation_disable: True

        [Order]
        profiles: {json.dumps(PROFILES)}

        [Renewalinfo]
        renewal_force: {renewal_force}
        retry_after_timeout: 86400
        """))
    env = {**os.environ, "ACME_SRV_CONFIGFILE": str(config), "ACME2CERTIFIER_I_KNOW_THE_RISK": "1",
           "ACME2CERTIFIER_BASE_DIR": str(state)}
    pidfile, log = state / "a2c.pid", state / "a2c.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(VENV / "bin" / "python"), "-c", SERVER, str(port)], cwd=state, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    pidfile.write_text(str(proc.pid))
    wait_port("127.0.0.1", port, pid=proc.pid)
    return A2cServer(f"http://127.0.0.1:{port}/directory", port, state, pidfile, log)
