"""The certificates role and the services of a host that are not proxies: a real Postfix that
serves its certificate after STARTTLS, and a service that speaks TLS at once and loads its
certificate only when told to (SIGHUP). After a renewal each is reloaded by its own command and
checked from the host; a service that did not load the renewal is healed by its reload, or the
run fails naming the listener and both serials."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from ansible_collections.certops.acme.plugins.module_utils._starttls import start_tls

from tests.harness.mail import Postfix
from tests.harness.processes import pid_from, stop_pidfile, wait_port

pytestmark = pytest.mark.integration

ADDRESS = "127.0.0.151"
SMTP_PORT, TLS_PORT = 2525, 8465
MAIL, APP = "mail.services.test", "app.services.test"
HARNESS = Path(__file__).resolve().parents[1] / "harness"


def served_serial(port: int, name: str, starttls: str = "none") -> str:
    """What a client sees, asked from outside the role."""
    with socket.create_connection((ADDRESS, port), timeout=5) as raw:
        start_tls(raw, starttls)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return format(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number, "x")


def installed_serial(dest: Path, name: str) -> str:
    return format(x509.load_pem_x509_certificate((dest / name / "cert.pem").read_bytes()).serial_number, "x")


@pytest.fixture
def mailhost(controller, pebble_server, account):
    dest = controller.work / "mailhost"
    postfix = Postfix(ADDRESS, SMTP_PORT, dest / MAIL / "privkey.pem", dest / MAIL / "fullchain.pem")
    pidfile = controller.work / "listener.pid"
    playbook = controller.role_playbook("services", "certops_certificates_served | default([])",
                                        str(controller.work / "served.json"))

    def write(app_reload: str | None, services: bool = True) -> None:
        mail = {"name": MAIL, "domains": [MAIL]}
        app = {"name": APP, "domains": [APP]}
        if services:
            mail.update(serve=[{"address": ADDRESS, "port": SMTP_PORT, "starttls": "smtp"}],
                        reload=postfix.reload_command)
            app.update(serve=[{"address": ADDRESS, "port": TLS_PORT}], reload=app_reload)
        controller.write_inventory({"all": {"hosts": {"mailhost": controller.local_host(
            certops_certificates_dest=str(dest), certops_certificates_list=[mail, app],
            certops_certificates_acme_directory=pebble_server.directory_url,
            certops_certificates_acme_ca_path=pebble_server.ca_cert,
            certops_certificates_account_key_src=account["key_path"],
            certops_certificates_store_path=str(controller.work / "store"))}}})

    def start_services() -> str:
        postfix.start()
        proc = subprocess.Popen([sys.executable, str(HARNESS / "tls_listener.py"), ADDRESS, str(TLS_PORT),
                                 str(dest / APP / "fullchain.pem"), str(dest / APP / "privkey.pem")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        pidfile.write_text(str(proc.pid))
        wait_port(ADDRESS, TLS_PORT, pid=proc.pid)
        wait_port(ADDRESS, SMTP_PORT, timeout=20, pidfile=postfix.dir / "queue" / "pid" / "master.pid")
        return f"kill -HUP {proc.pid}"

    host = {"dest": dest, "postfix": postfix, "playbook": playbook, "write": write, "start": start_services,
            "served": lambda: json.loads((controller.work / "served.json").read_text())}
    try:
        yield host
    finally:
        stop_pidfile(pidfile)
        postfix.stop()


def test_services_are_reloaded_after_a_renewal_and_checked_after_starttls(controller, mailhost, http01_responder):
    dest, run = mailhost["dest"], mailhost["playbook"]
    # The services read the installed files: the first run puts them there.
    mailhost["write"](None, services=False)
    controller.run(run, check=True)
    hup = mailhost["start"]()
    mailhost["write"](hup)
    second = controller.run(run, check=True)
    assert {(s["certificate"], s["starttls"], s["state"]) for s in mailhost["served"]()} == {
        (MAIL, "smtp", "match"), (APP, "none", "match")}, second.stdout[-3000:]
    table = [line for line in second.stdout.splitlines() if line.strip().strip('",').startswith((MAIL, APP))]
    assert len(table) == 2 and all(" yes " in line for line in table), \
        f"the status table's served column does not cover the services: {table}"
    assert "DEPRECATION" not in second.stderr, second.stderr
    before = {MAIL: served_serial(SMTP_PORT, MAIL, "smtp"), APP: served_serial(TLS_PORT, APP)}

    renewed = controller.run(run, "-e", "certops_certificates_force_renew=true", check=True)
    for name, port, starttls in ((MAIL, SMTP_PORT, "smtp"), (APP, TLS_PORT, "none")):
        now = served_serial(port, name, starttls)
        assert now == installed_serial(dest, name) != before[name], f"{name} was not reloaded: {renewed.stdout[-3000:]}"
    assert "reload -- version" in mailhost["postfix"].log(), "Postfix was never reloaded"


def test_a_renewal_the_service_did_not_load_fails_naming_it_and_is_healed_by_its_reload(
        controller, mailhost, http01_responder):
    dest, run = mailhost["dest"], mailhost["playbook"]
    mailhost["write"](None, services=False)
    controller.run(run, check=True)
    hup = mailhost["start"]()
    mailhost["write"]("true")  # a reload that does not reload
    old = served_serial(TLS_PORT, APP)
    stale = controller.run(run, "-e", "certops_certificates_force_renew=true")
    assert stale.returncode != 0
    new = installed_serial(dest, APP)
    assert new != old and served_serial(TLS_PORT, APP) == old
    expected = (f"mailhost: {APP} (SNI {APP} at {ADDRESS}:{TLS_PORT}) serves serial {old}, "
                f"but serial {new} is installed")
    assert expected in stale.stdout, stale.stdout[-3000:]
    assert f"{MAIL} (SNI" not in stale.stdout, "Postfix, which reloaded, was reported stale"

    # Its reload fixed, the next run installs nothing and heals the service by reloading it.
    mailhost["write"](hup)
    healed = controller.run(run, check=True)
    assert served_serial(TLS_PORT, APP) == new
    assert "Reload the server for what is still stale" in healed.stdout
    assert pid_from(controller.work / "listener.pid")
