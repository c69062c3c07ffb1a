"""Execution environments as AWX runs them: podman with Debian's runc, a base image the project
makes from Debian packages (scripts/ee-base-image.sh), the image ansible-builder builds from the
definition users get (docs/awx/execution-environment.yml), and ansible-runner jobs in it."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.ansible import REPO

DEFINITION = REPO / "docs" / "awx" / "execution-environment.yml"
BASE_IMAGE_SCRIPT = REPO / "scripts" / "ee-base-image.sh"
DOCUMENTED_BASE_IMAGE = "localhost/certops-ee-base:bookworm"


def tool(name: str) -> str:
    """A command of the test venv (ansible-builder, ansible-runner), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def missing_tools() -> list[str]:
    return [name for name in ("podman", "runc", "debootstrap") if shutil.which(name) is None]


def podman_environment(work: Path) -> dict[str, str]:
    """The environment every podman call gets: runc as the runtime (crun refuses this machine's
    cgroup layout) and resource limits no higher than this process has (podman's defaults ask
    for more, which runc may not set here: 'error setting rlimit ... operation not permitted')."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else nofile
    config = work / "containers.conf"
    config.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n')
    return {**os.environ, "CONTAINERS_CONF": str(config)}


def base_image_name() -> str:
    """Named by the script's content, so that a changed script makes a new image and an
    unchanged one is reused (it takes a minute or two)."""
    digest = hashlib.sha256(BASE_IMAGE_SCRIPT.read_bytes()).hexdigest()[:12]
    return f"localhost/certops-ee-base:tests-{digest}"


def make_base_image(env: dict[str, str]) -> str:
    image = base_image_name()
    out = subprocess.run(["bash", str(BASE_IMAGE_SCRIPT), image], env=env, capture_output=True, text=True,
                         check=False, timeout=900)
    assert out.returncode == 0, f"ee-base-image.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return image


def build_execution_environment(work: Path, base_image: str, tag: str, env: dict[str, str]) -> str:
    """ansible-builder on the documented definition with one change, the base image's name; the
    collection goes in as the tarball `ansible-galaxy collection build` makes of this tree."""
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("certops-acme-*.tar.gz"):
        old.unlink()
    subprocess.run([tool("ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(work)],
                   check=True, capture_output=True, text=True)
    [tarball] = work.glob("certops-acme-*.tar.gz")
    tarball.replace(work / "certops-acme.tar.gz")
    documented = DEFINITION.read_text()
    assert documented.count(DOCUMENTED_BASE_IMAGE) == 1, "the definition names its base image once"
    (work / "execution-environment.yml").write_text(documented.replace(DOCUMENTED_BASE_IMAGE, base_image))
    out = subprocess.run([tool("ansible-builder"), "build", "-f", "execution-environment.yml", "-c", "context",
                          "-t", tag, "--container-runtime", "podman",
                          # The build reaches PyPI and Debian's mirror; the jobs run without that.
                          "--extra-build-cli-args=--network=host", "-v", "2"],
                         cwd=work, env=env, capture_output=True, text=True, check=False, timeout=1500)
    assert out.returncode == 0, f"ansible-builder build failed:\n{out.stdout[-5000:]}\n{out.stderr[-2000:]}"
    return tag


IMAGE = "localhost/certops-acme-ee:tests"
#: Set by scripts/test.sh, which builds the image before the legs start, outside their network
#: namespaces (the build needs PyPI and Debian's mirror; the legs have no network).
ENV_PREBUILT = "CERTOPS_TEST_EE_READY"


def prepared_image(work: Path, timeout: float = 1800.0) -> str:
    """The execution environment image: the one scripts/test.sh is building (waits for it),
    else built here and now."""
    env = podman_environment(work)
    ready = os.environ.get(ENV_PREBUILT)
    if not ready:
        return build_execution_environment(work / "build", make_base_image(env), IMAGE, env)
    deadline = time.monotonic() + timeout
    marker = Path(ready)
    while not marker.exists():
        assert time.monotonic() < deadline, f"the execution environment build did not finish in {timeout:.0f} s"
        time.sleep(2)
    outcome = marker.read_text().strip()
    assert outcome == IMAGE, f"the execution environment build failed ({outcome}); its log is beside {marker}"
    return IMAGE


def main(argv: list[str]) -> int:
    """python -m tests.harness.containers WORK READY_FILE: build the image, then write its name
    (or what failed) to READY_FILE, which the test waits for."""
    work, marker = Path(argv[0]), Path(argv[1])
    env = podman_environment(work)
    try:
        image = build_execution_environment(work / "build", make_base_image(env), IMAGE, env)
    except (AssertionError, subprocess.SubprocessError, OSError) as failure:
        print(failure, file=sys.stderr)
        marker.write_text(f"failed: {str(failure).splitlines()[0]}\n")
        return 1
    marker.write_text(image + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
