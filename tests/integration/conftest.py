"""Session fixtures: one real Pebble (5 % badNonce injection left on), a real HAProxy answering
http-01 statelessly on 127.0.0.1, and helpers to write playbooks and run ansible-playbook."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.harness import layouts, openbao, pebble
from tests.harness.controller import Controller, make_account, stateless_haproxy_config
from tests.harness.processes import stop_pidfile, wait_port


PEBBLE_BASE_PORT = int(os.environ.get("CERTOPS_TEST_PEBBLE_PORT", "14100"))
BAO_DEV_PORT = int(os.environ.get("CERTOPS_TEST_BAO_DEV_PORT", "14300"))

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pebble_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pebble.PebbleInfo]:
    info = pebble.start(tmp_path_factory.mktemp("pebble"), base_port=PEBBLE_BASE_PORT)
    yield info
    pebble.stop(info)


@pytest.fixture(scope="session")
def bao_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openbao.BaoCluster]:
    """One in-memory OpenBao ``-dev`` server (plain HTTP on loopback) for store contract tests;
    each test keeps its records under a prefix of its own."""
    server = openbao.start_dev(tmp_path_factory.mktemp("bao-dev"), port=BAO_DEV_PORT)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def account(pebble_server: pebble.PebbleInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An account key file and its (created) account; the thumbprint drives the responders."""
    return make_account(pebble_server, tmp_path_factory.mktemp("account") / "account.key")


@pytest.fixture(scope="session")
def http01_responder(pebble_server: pebble.PebbleInfo, account: dict[str, str],
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real HAProxy on 127.0.0.1 (where challtestsrv points every name by default)."""
    work = tmp_path_factory.mktemp("responder")
    config = work / "haproxy.cfg"
    config.write_text(stateless_haproxy_config("127.0.0.1", pebble_server.ports.http01, account["thumbprint"])
                      .replace("{sock}", str(work / "admin.sock")))
    pidfile = work / "haproxy.pid"
    subprocess.run(["haproxy", "-W", "-D", "-f", str(config), "-p", str(pidfile)], check=True)
    wait_port("127.0.0.1", pebble_server.ports.http01, pidfile=pidfile)
    yield "127.0.0.1"
    stop_pidfile(pidfile)


@pytest.fixture
def controller(tmp_path: Path, pebble_server: pebble.PebbleInfo, account: dict[str, str]) -> Controller:
    return Controller(tmp_path, pebble_server, account)


@pytest.fixture
def layout(request, controller, pebble_server, account):
    created = []

    def make(proxy, addresses, names):
        created.append(layouts.EdgeLayout(controller, pebble_server, account, proxy, addresses, names))
        return created[-1]
    yield make
    for item in created:
        item.stop()
