"""What an AWX job does: the collection inside an execution environment, credentials injected as
environment variables by our credential types, a fresh (empty) controller store every job.

AWX itself and container builds cannot run here (no container engine): the job is run by
ansible-runner, the same engine AWX uses, with a private data directory laid out as AWX lays
it out, and the credential types' injectors rendered with Jinja2 as AWX renders them."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.harness.ansible import REPO, collections_path
from tests.harness.awx import CREDENTIAL_TYPES, injected_environment
from tests.harness.processes import stop_pidfile
from tests.harness.layouts import EdgeLayout

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("credential_type", sorted(p.name for p in CREDENTIAL_TYPES.glob("*.yml")))
def test_credential_types_inject_only_variables_the_collection_reads(credential_type):
    from ansible_collections.certops.acme.plugins.module_utils._acme.options import ENVIRONMENT
    definition = yaml.safe_load((CREDENTIAL_TYPES / credential_type).read_text())
    from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.lexicon import provider_options
    known = {fallback.variable for fallback in ENVIRONMENT}
    # dns-lexicon reads LEXICON_<PROVIDER>_<OPTION> itself, for the options its provider declares.
    for variable in definition["injectors"]["env"]:
        if variable.startswith("LEXICON_"):
            provider = variable.split("_")[1].lower()
            known |= {f"LEXICON_{provider.upper()}_{o.upper()}" for o in provider_options(provider)}
    assert set(definition["injectors"]["env"]) <= known
    secret_fields = {f["id"] for f in definition["inputs"]["fields"] if f.get("secret")}
    assert secret_fields, "every type carries a secret, which AWX must mask"


def test_renew_playbook_in_an_awx_like_job_adopts_host_certificates_and_orders_nothing(
        controller, pebble_server, account, tmp_path):
    names = ["awx1.edge.test", "awx2.edge.test"]
    layout = EdgeLayout(controller, pebble_server, account, "haproxy", ["127.0.0.71"], names)
    try:
        layout.run()  # an earlier job (or a person) issued and installed them (fails the test if not)
        orders_before = pebble_server.new_orders()

        # The job's inventory has no account key and no CA: those come from the credential.
        inventory = json.loads(controller.inventory.read_text())
        for host in inventory["all"]["children"]["edge"]["hosts"].values():
            host.pop("certops_edge_account_key_src")
            host.pop("certops_edge_acme_directory")
            host["certops_edge_store_path"] = str(tmp_path / "fresh-container-store")
            # A private CA's root: what the hosts hold is adopted only when it chains to it.
            host["certops_edge_adopt_trust_roots"] = [pebble_server.root_file()]
        private = tmp_path / "job"
        for sub in ("inventory", "env", "project"):
            (private / sub).mkdir(parents=True)
        (private / "inventory" / "hosts.json").write_text(json.dumps(inventory))
        (private / "project" / "renew.yml").write_text(
            "- name: Scheduled renewal\n  ansible.builtin.import_playbook: certops.acme.renew\n")
        credentials = injected_environment("acme-account.yml", {
            "acme_directory": pebble_server.directory_url,
            "account_key": Path(account["key_path"]).read_text()}, files_dir=private / "env")
        (private / "env" / "envvars").write_text(yaml.safe_dump({
            **credentials, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)),
            "PATH": f"{BIN}:/usr/bin:/bin"}))

        job = subprocess.run([str(BIN / "ansible-runner"), "run", str(private), "-p", "renew.yml",
                              "--ident", "renew"], capture_output=True, text=True, check=False, timeout=600)
        artifacts = private / "artifacts" / "renew"
        assert job.returncode == 0, job.stdout[-4000:]
        assert (artifacts / "status").read_text() == "successful"
        assert pebble_server.new_orders() == orders_before, "the job ordered certificates the hosts already hold"
        assert all((tmp_path / "fresh-container-store" / "certificates" / n / "current").exists() for n in names)

        stdout = (artifacts / "stdout").read_text()
        assert "days left" in stdout and "awx1.edge.test" in stdout  # the summary table
        assert "BEGIN" not in stdout, "key material in the job output"
        stats = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
        [end] = [e for e in stats if e.get("event") == "playbook_on_stats"]
        status = {s["name"]: s for s in end["event_data"]["artifact_data"]["certops_certificates_status"]}
        assert set(status) == set(names)
        assert all(s["action"] == "keep" and s["days_left"] > 30 and s["hosts"] == ["edge0"] for s in status.values())
    finally:
        for pidfile in layout.pidfiles:
            stop_pidfile(pidfile)
        stop_pidfile(layout.backend_pid)


def test_ansible_builder_creates_the_execution_environment_context(tmp_path):
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    [tarball] = tmp_path.glob("certops-acme-*.tar.gz")
    tarball.rename(tmp_path / "certops-acme.tar.gz")
    definition = tmp_path / "execution-environment.yml"
    definition.write_text((REPO / "docs" / "awx" / "execution-environment.yml").read_text())
    out = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(definition), "-c", str(tmp_path / "ctx")],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    build = tmp_path / "ctx" / "_build"
    assert (build / "collections" / "certops-acme.tar.gz").exists()
    containerfile = next((tmp_path / "ctx").glob("*file")).read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile


def test_ansible_builder_introspection_finds_the_collections_python_and_system_needs(tmp_path):
    """What the EE build derives from meta/execution-environment.yml of the installed collection."""
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    [tarball] = tmp_path.glob("certops-acme-*.tar.gz")
    with tarfile.open(tarball) as archive:
        assert "meta/execution-environment.yml" in archive.getnames()
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(tmp_path / "ee")],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(tmp_path / "ee")],
                         capture_output=True, text=True, check=True)
    found = yaml.safe_load(out.stdout)
    wanted = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()]
    assert [line.split("#")[0].strip() for line in found["python"]] == wanted
    assert any(line.startswith("libffi-dev") for line in found["system"])
