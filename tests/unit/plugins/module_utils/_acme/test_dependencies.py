"""A controller without the ACME libraries: every plugin still imports, and the error names the fix.

Runs in a child interpreter whose import system refuses josepy and dnspython, which is what a
controller that lacks them looks like (installing and removing real packages here would change
the test environment for every other test)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import _ROOT

CHILD = textwrap.dedent("""
    import importlib, pkgutil, sys
    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("josepy", "dns"):
                raise ImportError("refused " + name)
    sys.meta_path.insert(0, Refuse())
    sys.path.insert(0, sys.argv[1])
    import ansible_collections.certops.acme.plugins.module_utils._acme as engine
    for info in pkgutil.iter_modules(engine.__path__):
        importlib.import_module(engine.__name__ + "." + info.name)
    for plugin in ("account", "certificate", "install", "challenge"):
        importlib.import_module("ansible_collections.certops.acme.plugins.action." + plugin)
    from ansible_collections.certops.acme.plugins.module_utils._acme import dependencies
    print(dependencies.missing_controller_libraries())
    try:
        dependencies.require_controller_libraries()
    except Exception as error:
        print(error)
""")


def test_engine_and_action_plugins_import_without_the_libraries_and_name_the_missing_ones():
    out = subprocess.run([sys.executable, "-c", CHILD, str(_ROOT)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    listed, message = out.stdout.splitlines()[:2]
    # acme imports josepy, so it is reported too: what the user must install is what fails to import.
    assert listed == "['acme', 'josepy', 'dnspython']"
    assert f"{sys.executable} -m pip install acme josepy dnspython" in message


def test_nothing_is_missing_in_the_test_environment():
    from ansible_collections.certops.acme.plugins.module_utils._acme.dependencies import missing_controller_libraries
    assert missing_controller_libraries() == []
