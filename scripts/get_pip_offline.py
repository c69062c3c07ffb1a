"""Stand-in for the pip bootstrap script that ansible-test downloads from ci-files.testing.ansible.com.

ansible-test creates each sanity test's virtual environment without pip and runs a cached
``get-pip`` script in it. This machine reaches PyPI but not that host, so scripts/sanity.sh puts
this file in ansible-test's cache instead: it installs the pip bundled with CPython (ensurepip),
then runs ``pip install`` with the arguments ansible-test passes (pip pinned to its version),
fetched from the configured package index like every other requirement.
"""

import ensurepip
import os
import runpy
import sys

# get-pip.py understands two flags of its own that pip install does not.
GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}

# ensurepip points PIP_CONFIG_FILE at os.devnull for its own offline install; put back what the
# caller had so that the install below sees the machine's pip configuration (index, CA bundle).
config_before = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap(upgrade=True)
if config_before is None:
    os.environ.pop("PIP_CONFIG_FILE", None)
else:
    os.environ["PIP_CONFIG_FILE"] = config_before
sys.argv = ["pip", "install"] + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
