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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils._haproxy_runtime import RuntimeRefused, swap_certificate


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
            if swap_certificate(module.params["socket"], path, module.params["timeout"]):
                updated.append(path)
            else:
                needs_reload.append(path)
        except RuntimeRefused as error:
            module.fail_json(msg=str(error), updated=updated)
        except (IOError, OSError) as error:
            module.fail_json(msg="cannot talk to HAProxy at %s about %s: %s" % (module.params["socket"], path, error))
    module.exit_json(changed=bool(updated), updated=updated, needs_reload=needs_reload)


if __name__ == "__main__":
    main()
