"""The AWX path for real: the execution environment is built with ansible-builder and podman
from the definition users get (docs/awx/execution-environment.yml), on a base image
scripts/ee-base-image.sh makes from Debian packages, and the edge playbook runs inside it with
ansible-runner's process isolation, as an AWX job runs: credentials injected as the shipped
credential types define them, the hosts reached over SSH with the key AWX would load into
ssh-agent, certificates kept in a 3-node OpenBao cluster (store: vault), and every run in a
fresh container.

Not AWX itself (it needs Kubernetes or a registry): its part is played by ansible-runner, the
engine AWX uses, with the private data directory laid out as AWX lays it out. The containers
share this test's network namespace (--network=host): Pebble, OpenBao and the hosts' sshd are
on its loopback addresses, nothing outside it is reachable from the jobs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness import containers, openbao
from tests.harness.awx import injected_environment
from tests.harness.layouts import HTTPS_PORT, EdgeLayout
from tests.harness.processes import stop_pidfile
from tests.harness.sshd import start_sshd
from tests.harness.tls import handshake

pytestmark = pytest.mark.integration

SSH_ADDRESS, SSH_PORT = "127.0.0.76", int(os.environ.get("CERTOPS_TEST_EE_SSH_PORT", "2223"))
BAO_PORT = int(os.environ.get("CERTOPS_TEST_EE_BAO_PORT", "14380"))
BAO_ADDRESSES = ("127.0.0.77", "127.0.0.78", "127.0.0.79")
EDGE_ADDRESS = "127.0.0.75"
NAMES = ["ee1.edge.test", "ee2.edge.test"]


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    missing = containers.missing_tools()
    assert not missing, f"scripts/setup.sh installs {', '.join(missing)}; run it first"
    return containers.podman_environment(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def execution_environment(podman_env, tmp_path_factory):
    return containers.prepared_image(tmp_path_factory.mktemp("ee"))


@pytest.fixture(scope="module")
def bao_cluster(tmp_path_factory):
    cluster = openbao.start_cluster(tmp_path_factory.mktemp("ee-bao"), port=BAO_PORT, addresses=BAO_ADDRESSES)
    yield cluster
    cluster.stop()


def awx_job(private: Path, inventory: dict, credentials: dict[str, str], ssh_key: Path) -> None:
    """Lays out an AWX job's private data directory: inventory, project, the injected
    environment, and the machine credential's key (ansible-runner loads it into ssh-agent)."""
    for sub in ("inventory", "env", "project"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    (private / "inventory" / "hosts.json").write_text(json.dumps(inventory))
    (private / "project" / "edge.yml").write_text(
        "- name: Edge termination\n  ansible.builtin.import_playbook: certops.acme.edge\n")
    # AWX's default: hosts' keys are not checked (a job's container has no known_hosts).
    (private / "env" / "envvars").write_text(yaml.safe_dump({**credentials, "ANSIBLE_HOST_KEY_CHECKING": "False"}))
    (private / "env" / "ssh_key").write_text(ssh_key.read_text())


def run_in_container(private: Path, ident: str, podman_env: dict[str, str], mounts: list[str]) -> dict:
    command = [containers.tool("ansible-runner"), "run", str(private), "-p", "edge.yml", "--ident", ident,
               "--process-isolation", "--process-isolation-executable", "podman",
               "--container-image", containers.IMAGE, "--container-option=--network=host",
               # The image runs as uid 1000; the private data directory (and the pipe ansible-runner
               # hands the SSH key through) belongs to root here, who runs the job.
               "--container-option=--user=0"]
    for mount in mounts:
        command += ["--container-volume-mount", mount]
    job = subprocess.run(command, env=podman_env, capture_output=True, text=True, check=False, timeout=900)
    artifacts = private / "artifacts" / ident
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else job.stdout
    assert job.returncode == 0, f"{stdout[-6000:]}\n{job.stderr[-2000:]}"
    assert (artifacts / "status").read_text() == "successful"
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    [end] = [e for e in events if e.get("event") == "playbook_on_stats"]
    return {"stdout": stdout, "stats": end["event_data"], "events": events}


def test_the_edge_layout_runs_in_the_built_execution_environment_and_a_fresh_container_orders_nothing(
        execution_environment, podman_env, bao_cluster, controller, pebble_server, account, tmp_path):
    ssh = start_sshd(tmp_path / "sshd", SSH_ADDRESS, SSH_PORT)
    layout = EdgeLayout(controller, pebble_server, account, "haproxy", [EDGE_ADDRESS], NAMES)
    try:
        inventory = json.loads(controller.inventory.read_text())
        target = {key: value for key, value in ssh.host_vars().items()
                  # The key comes as the machine credential; ssh's control sockets stay inside the job.
                  if key not in ("ansible_ssh_private_key_file", "ansible_ssh_args")}
        for host in inventory["all"]["children"]["edge"]["hosts"].values():
            host.update(target)
            # The account, the CA and the store come from credentials, not from the inventory.
            for key in ("certops_edge_account_key_src", "certops_edge_acme_directory", "certops_edge_store_path"):
                host.pop(key)
        prefix = "certops-acme/ee"
        # AWX writes file injectors into the job's private data directory (/runner in the job).
        injected = tmp_path / "injected"
        injected.mkdir()
        seen_at = Path("/runner/credentials")
        credentials = {
            **injected_environment("acme-account.yml", {
                "acme_directory": pebble_server.directory_url,
                "account_key": Path(account["key_path"]).read_text()}, files_dir=injected, files_seen_at=seen_at),
            **injected_environment("vault-store.yml", {
                "url": ",".join(bao_cluster.urls), "token": bao_cluster.token, "prefix": prefix,
                "ca_cert": Path(bao_cluster.ca_cert).read_text()}, files_dir=injected, files_seen_at=seen_at),
        }
        # Pebble's own CA (certops_edge_acme_ca_path) is a controller-side file: in the job it
        # is where the inventory says, read-only.
        pebble_dir = str(Path(pebble_server.ca_cert).parent)
        orders = [pebble_server.new_orders()]
        for ident in ("first", "second"):
            private = tmp_path / ident
            awx_job(private, inventory, credentials, ssh.key)
            shutil.copytree(injected, private / "credentials")
            job = run_in_container(private, ident, podman_env, [f"{pebble_dir}:{pebble_dir}:ro"])
            orders.append(pebble_server.new_orders())
            assert "BEGIN" not in job["stdout"], "key material in the job output"
            for secret in (bao_cluster.token, Path(account["key_path"]).read_text().splitlines()[1]):
                assert secret not in job["stdout"]
            if ident == "first":
                first_serials = {n: layout.serial(EDGE_ADDRESS, n) for n in NAMES}

        # The first job ordered both names; the second, in a container that never saw the
        # first, found them in the shared store and on the host, and ordered nothing.
        assert orders[1] - orders[0] >= len(NAMES)
        assert orders[2] == orders[1], job["stdout"][-4000:]
        assert sorted(bao_cluster.kv_list(f"{prefix}/certificates")) == sorted(NAMES)
        for name in NAMES:
            served = handshake(EDGE_ADDRESS, HTTPS_PORT, name, pebble_server.root_pem())
            assert served.serial == first_serials[name]
        assert job["stats"]["changed"].get("edge0", 0) == 0, "the second job changed the host"
        # The hosts ran our modules with Debian's system Python over SSH, not the container's.
        assert "Accepted publickey for root" in (tmp_path / "sshd" / "sshd.log").read_text()
    finally:
        ssh.stop()
        for pidfile in layout.pidfiles:
            stop_pidfile(pidfile)
        stop_pidfile(layout.backend_pid)
