# -*- coding: utf-8 -*-
"""The controller-side Python libraries the engine needs, and a clear error when one is missing.

Every engine module guards its third-party imports so that importing it never fails (Ansible
loads plugins before running them, and ``ansible-test sanity`` imports them without these
libraries). Each action plugin calls :func:`require_controller_libraries` before any work, so a
controller without them gets one message naming what to install instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys

from .errors import CertopsError

#: Distribution name on PyPI -> the module it provides.
CONTROLLER_LIBRARIES = {
    "acme": "acme",
    "josepy": "josepy",
    "cryptography": "cryptography",
    "requests": "requests",
    "idna": "idna",
    "dnspython": "dns",
}


def missing_controller_libraries() -> list[str]:
    """Distribution names whose module does not import in this Python."""
    missing = []
    for distribution, module in CONTROLLER_LIBRARIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    return missing


def require_controller_libraries() -> None:
    missing = missing_controller_libraries()
    if missing:
        raise CertopsError(
            f"certops.acme runs ACME on the controller and needs the Python packages {', '.join(missing)} "
            f"in the Python that runs Ansible ({sys.executable}). Install them with "
            f"'{sys.executable} -m pip install {' '.join(missing)}' (the collection's requirements.txt lists "
            "them), or, for AWX, build the execution environment from meta/execution-environment.yml.")
