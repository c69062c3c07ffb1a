# -*- coding: utf-8 -*-
"""The dns-01 hook provider: a program of the user's, run on the controller for each TXT record.

It lives in plugin_utils rather than with the other providers in module_utils/_acme/challenges/dns01.py
because it starts a process: module_utils code may be shipped to targets, where Ansible wants
``AnsibleModule.run_command``; this runs only inside the certificate action plugin."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Optional

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import CertopsError
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline


@dataclass
class HookProvider:
    """Runs ``executable add|del RECORD_NAME VALUE`` (JSON with the same on stdin)."""

    executable: str
    #: Upper bound for one call; the batch's deadline (``bind_deadline``) shortens it.
    timeout: float = 120.0
    deadline: Optional[Deadline] = None

    def bind_deadline(self, deadline: Deadline) -> None:
        """Bound every later call by ``deadline`` (the responder calls this before deploying)."""
        self.deadline = deadline

    def _call(self, action: str, record_name: str, value: str) -> None:
        payload = json.dumps({"action": action, "name": record_name, "value": value})
        timeout = self.timeout
        if self.deadline is not None:
            timeout = max(1.0, min(timeout, self.deadline.remaining()))
        try:
            proc = subprocess.run([self.executable, action, record_name, value], input=payload,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CertopsError(f"dns-01 hook {self.executable} {action} {record_name}: no answer within "
                               f"{timeout:.0f} s (bounded by the task's timeout)") from None
        except OSError as error:
            raise CertopsError(f"dns-01 hook {self.executable} {action} {record_name}: {error}") from None
        if proc.returncode != 0:
            raise CertopsError(f"dns-01 hook {self.executable} {action} {record_name} exited "
                               f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()[:300]}")

    def add_txt(self, record_name: str, value: str) -> None:
        self._call("add", record_name, value)

    def delete_txt(self, record_name: str, value: str) -> None:
        self._call("del", record_name, value)
