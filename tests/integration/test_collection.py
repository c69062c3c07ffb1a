"""The collection as users meet it: a Galaxy tarball and ansible-doc pages."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.harness.ansible import REPO, collections_path

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
MODULES = ["account", "certificate", "install", "challenge", "haproxy_runtime_cert", "revoke", "served", "orphans",
           "store_copy", "config_files"]
ROLES = ["edge", "passthrough", "certificates"]


def test_galaxy_build_produces_a_tarball_without_dev_files(tmp_path):
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path",
                    str(tmp_path)], check=True, capture_output=True, text=True)
    [tarball] = tmp_path.glob("certops-acme-*.tar.gz")
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
    assert "plugins/action/certificate.py" in members
    assert "roles/edge/meta/argument_specs.yml" in members
    assert not any(m.startswith((".venv", ".tmp", ".demo", ".ci")) for m in members)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_every_module(tmp_path, module):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "PATH": f"{BIN}:/usr/bin:/bin"}
    out = subprocess.run([str(BIN / "ansible-doc"), f"certops.acme.{module}"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "EXAMPLES" in out.stdout and "RETURN VALUES" in out.stdout
    assert "[WARNING]" not in out.stderr, out.stderr


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_renders_every_role(tmp_path, role):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "PATH": f"{BIN}:/usr/bin:/bin"}
    out = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", f"certops.acme.{role}"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert f"certops_{role}_" in out.stdout or "certops_certificates_list" in out.stdout


@pytest.mark.parametrize("name", ["sites_to_certificates", "merge_certificates", "passthrough_routes",
                                  "merge_stage_results", "installable", "openmetrics", "at_risk"])
def test_ansible_doc_renders_the_filters(tmp_path, name):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "PATH": f"{BIN}:/usr/bin:/bin"}
    out = subprocess.run([str(BIN / "ansible-doc"), "-t", "filter", f"certops.acme.{name}"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_the_galaxy_tarball_installs_and_runs_by_fqcn_from_outside_the_repo(
        controller, pebble_server, http01_responder, tmp_path):
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path",
                    str(tmp_path / "dist")], check=True, capture_output=True, text=True)
    [tarball] = (tmp_path / "dist").glob("certops-acme-*.tar.gz")
    installed = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(installed)],
                   check=True, capture_output=True, text=True)
    assert (installed / "ansible_collections" / "certops" / "acme" / "MANIFEST.json").exists()
    name = "galaxy.collection.test"
    playbook = controller.playbook("from-galaxy", [
        {"certops.acme.certificate": {"store_path": str(controller.work / "store"),
                                      "certificates": [{"name": name, "domains": [name]}]}},
        {"certops.acme.install": {"store_path": str(controller.work / "store"), "dest": str(controller.work / "host"),
                                  "certificates": [name]}}])
    run = controller.run(playbook, check=True, env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    assert run.total("changed") == 2
    assert (controller.work / "host" / name / "fullchain.pem").exists()


def test_changelog_fragments_pass_antsibull_changelog_lint():
    out = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_ansible_test_sanity_passes_on_this_python():
    """Every sanity test ansible-test runs for a collection, on the Python and ansible-core of
    this test run, with only the justified entries of tests/sanity/ignore-<version>.txt."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "sanity.sh"), str(BIN.parent)], capture_output=True,
                         text=True, check=False, timeout=900)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert out.returncode == 0 and not errors, "\n".join(errors) or out.stderr[-3000:]


def test_ansible_lint_production_profile_passes(tmp_path):
    """ansible-lint --profile production over roles, playbooks and the rest (.ansible-lint holds
    the one skipped rule and why), with the collection resolvable by its FQCN."""
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "PATH": f"{BIN}:/usr/bin:/bin",
           "HOME": str(tmp_path)}
    out = subprocess.run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", "-f", "pep8"],
                         cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Profile 'production' was required, and it passed" in out.stderr + out.stdout
