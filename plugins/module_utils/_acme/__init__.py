"""Private controller-side ACME engine of certops.acme.

Everything in this package runs on the Ansible controller only (it imports ``acme``,
``josepy``, ``cryptography`` and ``requests``). Nothing here is shipped to targets: target
modules import only ``plugins/module_utils/_host_files.py``, which is standard library only.
"""
