"""Run ansible-playbook against this checkout as the installed collection certops.acme."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]


def collections_path(work: Path) -> Path:
    """A collections root where ansible_collections/certops/acme is this checkout."""
    root = work / "collections"
    link = root / "ansible_collections" / "certops" / "acme"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO)
    return root


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters per host."""
        hosts: dict[str, dict[str, int]] = {}
        for line in self.stdout.splitlines():
            match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
            if match and "ok=" in match.group(2):
                hosts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
        return hosts

    def total(self, counter: str) -> int:
        return sum(h.get(counter, 0) for h in self.recap().values())


def playbook_command(playbook: Path, inventory: Path, work: Path, extra_args: Optional[list[str]] = None,
                     env: Optional[dict[str, str]] = None) -> tuple[list[str], dict[str, str]]:
    """The ansible-playbook command line and environment a user of this checkout would have."""
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "ansible-playbook"), "-i", str(inventory), str(playbook), *(extra_args or [])]
    child_env = dict(os.environ)
    child_env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path(work)),
        "ANSIBLE_ROLES_PATH": str(work / "no-roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"),
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        # A task with no store_path uses the default store: this run's own, inside its work
        # directory, and apart from the store the tests name (work/store), so a step that picks
        # the wrong store is seen, and no run touches the default store of whoever runs the suite.
        "CERTOPS_ACME_STORE": str(work / "default-store"),
    })
    child_env.update(env or {})
    return command, child_env


def spawn_playbook(playbook: Path, inventory: Path, work: Path, extra_args: Optional[list[str]] = None,
                   env: Optional[dict[str, str]] = None) -> subprocess.Popen:
    """Start ansible-playbook without waiting (for runs that must overlap)."""
    command, child_env = playbook_command(playbook, inventory, work, extra_args, env)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env, cwd=str(work), stdin=subprocess.DEVNULL)


def run_playbook(playbook: Path, inventory: Path, work: Path, extra_args: Optional[list[str]] = None,
                 env: Optional[dict[str, str]] = None, check: bool = False) -> PlaybookRun:
    command, child_env = playbook_command(playbook, inventory, work, extra_args, env)
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=child_env, cwd=str(work),
                          stdin=subprocess.DEVNULL, check=False)
    run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    if check and proc.returncode != 0:
        raise AssertionError(f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return run
