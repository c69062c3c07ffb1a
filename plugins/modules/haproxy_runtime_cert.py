#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: haproxy_runtime_cert
short_description: Swap certificates in a running HAProxy through its runtime API, without a reload
version_added: 0.1.0
description:
  - For each certificate file, sends C(set ssl cert) with the file's current content and then
    C(commit ssl cert) over HAProxy's admin socket, so new handshakes use the new certificate
    at once while the process, its connections and its state stay as they are.
  - The file on disk must already hold the new certificate (as M(certops.acme.install) writes
    it), so a later reload or restart loads the same one.
  - A certificate HAProxy has not loaded yet (a new site) cannot be swapped in; it is reported
    in RV(needs_reload) and the caller reloads instead.
  - Standard library only on the target.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  socket:
    description: Path of HAProxy's stats socket with C(level admin).
    type: path
    required: true
  certificates:
    description: Paths of the certificate files exactly as HAProxy loaded them (crt or crt-list entries).
    type: list
    elements: path
    required: true
  timeout:
    description: Seconds to wait for each answer from HAProxy.
    type: float
    default: 10
"""

EXAMPLES = r"""
- name: Hot-swap renewed certificates
  certops.acme.haproxy_runtime_cert:
    socket: /run/haproxy/admin.sock
    certificates:
      - /etc/haproxy/certs/app.example.com/haproxy.pem
  register: swap

- name: Reload only when HAProxy did not know a certificate
  ansible.builtin.command: systemctl reload haproxy
  when: swap.needs_reload | length > 0
"""

RETURN = r"""
updated:
  description: Certificate files swapped in.
  returned: always
  type: list
  elements: str
needs_reload:
  description: Certificate files HAProxy does not have loaded; a reload picks them up.
  returned: always
  type: list
  elements: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule


def runtime_command(path, command, timeout):
    """Send one command to HAProxy's runtime API and return its whole answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode("ascii"))
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace").strip()


def swap_certificate(module, path, timeout):
    """True when swapped; False when HAProxy does not know ``path``; fails on other answers."""
    with open(path) as handle:
        pem = handle.read().strip()
    if "\n\n" in pem:
        module.fail_json(msg="%s contains an empty line, which ends a runtime API payload" % path)
    answer = runtime_command(module.params["socket"], "set ssl cert %s <<\n%s\n\n" % (path, pem), timeout)
    # HAProxy 2.6: "Can't replace a certificate which is not referenced by the configuration!"
    if "not referenced" in answer.lower():
        return False
    if "transaction" not in answer.lower():
        module.fail_json(msg="HAProxy refused the new certificate %s: %s" % (path, answer))
    answer = runtime_command(module.params["socket"], "commit ssl cert %s\n" % path, timeout)
    if "success" not in answer.lower():
        runtime_command(module.params["socket"], "abort ssl cert %s\n" % path, timeout)
        module.fail_json(msg="HAProxy could not commit %s: %s" % (path, answer))
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", required=True),
            certificates=dict(type="list", elements="path", required=True),
            timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    updated, needs_reload = [], []
    if module.check_mode:
        module.exit_json(changed=bool(module.params["certificates"]), updated=list(module.params["certificates"]),
                         needs_reload=[])
    for path in module.params["certificates"]:
        try:
            if swap_certificate(module, path, module.params["timeout"]):
                updated.append(path)
            else:
                needs_reload.append(path)
        except (IOError, OSError) as error:
            module.fail_json(msg="cannot talk to HAProxy at %s about %s: %s" % (module.params["socket"], path, error))
    module.exit_json(changed=bool(updated), updated=updated, needs_reload=needs_reload)


if __name__ == "__main__":
    main()
