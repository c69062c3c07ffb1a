#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: served
short_description: Compare the certificate a host's TLS listeners serve with the one installed
version_added: 0.2.0
description:
  - Connects from the host itself to each of its TLS listeners with the SNI of each name it
    serves, reads the certificate the server presents (unverified, since the point is to see
    it), and compares it with the leaf installed under O(dest)/CERTIFICATE/cert.pem.
  - A renewal that never reached the running server (a failed reload, an unusable HAProxy
    admin socket) leaves a new bundle on disk and the old certificate in service; every later
    run would otherwise report nothing to do until the old certificate expires. The roles run
    this after every install and on every run, heal a difference (runtime swap, else reload)
    and fail, naming host, name and both serials, if it stays.
  - Services that start TLS inside their own protocol (SMTP, IMAP, POP3, PostgreSQL) are asked
    after that exchange (O(checks[].starttls)).
  - Needs only the Python standard library on the target. Reads only; check mode runs it as is.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  checks:
    description: The listeners to check, one per name served.
    type: list
    elements: dict
    required: true
    suboptions:
      certificate:
        description: Certificate name (its directory under O(dest)).
        type: str
        required: true
      server_name:
        description: The name to send as SNI (a wildcard is checked through a name it covers).
        type: str
        required: true
      address:
        description: Address of the listener, as seen from the host.
        type: str
        required: true
      port:
        description: TCP port of the listener.
        type: int
        required: true
      key_algorithm:
        description:
          - Where a listener serves an ECDSA and an RSA certificate for one name, which one to ask
            for, by offering only that algorithm's TLS 1.2 cipher suites; empty asks for either.
        type: str
        choices: ["", ecdsa, rsa]
        default: ""
      starttls:
        description:
          - The plain-text opening the service speaks before TLS, from the host's side - V(smtp)
            (EHLO, STARTTLS; ports 25 and 587), V(imap) (143), V(pop3) (STLS; 110), V(postgres)
            (the SSLRequest; 5432); V(none) for a service that speaks TLS at once (443, 465, 993).
        type: str
        choices: [none, smtp, imap, pop3, postgres]
        default: none
        version_added: 0.2.0
      proxy_protocol:
        description:
          - Send a PROXY protocol v1 header (the check's own addresses) before the handshake, for a
            listener that expects one from a router in front of it.
        type: bool
        default: false
  dest:
    description: Directory holding one directory per installed certificate.
    type: path
    required: true
  timeout:
    description: Seconds one connection and handshake may take.
    type: float
    default: 5
  settle:
    description:
      - Seconds to keep checking names that differ before reporting them (a reload that was
        just signalled starts its new workers asynchronously).
    type: float
    default: 0
seealso:
  - module: certops.acme.install
  - module: certops.acme.haproxy_runtime_cert
"""

EXAMPLES = r"""
- name: Check that HAProxy serves what is installed
  certops.acme.served:
    dest: /etc/haproxy/certs
    checks:
      - {certificate: app.example.com, server_name: app.example.com, address: 127.0.0.1, port: 443}
  register: served
  failed_when: served.differing | length > 0
"""

RETURN = r"""
served:
  description: One entry per check.
  returned: always
  type: list
  elements: dict
  contains:
    certificate:
      description: Certificate name.
      type: str
    server_name:
      description: SNI sent.
      type: str
    starttls:
      description: The STARTTLS dialect spoken first (V(none) for TLS at once).
      type: str
      version_added: 0.2.0
    state:
      description:
        - C(match), C(differs) (another certificate is served), C(refused) (the handshake was
          refused), C(unreachable) (nothing answered) or C(not_installed).
      type: str
    served_serial:
      description: Serial (hex) of the certificate served, if any.
      type: str
    installed_serial:
      description: Serial (hex) of the installed leaf, if any.
      type: str
    error:
      description: What went wrong when nothing was served.
      type: str
differing:
  description: Certificates for which some check did not find the installed leaf served.
  returned: always
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils._served_probe import check_settled
from ansible_collections.certops.acme.plugins.module_utils._starttls import PROTOCOLS


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", required=True, options=dict(
                certificate=dict(type="str", required=True),
                server_name=dict(type="str", required=True),
                address=dict(type="str", required=True),
                port=dict(type="int", required=True),
                proxy_protocol=dict(type="bool", default=False),
                key_algorithm=dict(type="str", default="", choices=["", "ecdsa", "rsa"]),
                starttls=dict(type="str", default="none", choices=list(PROTOCOLS)),
            )),
            dest=dict(type="path", required=True),
            timeout=dict(type="float", default=5),
            settle=dict(type="float", default=0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for item in params["checks"]:
        if "/" in item["certificate"] or item["certificate"].startswith("."):
            module.fail_json(msg="checks: %r is not a usable certificate name" % item["certificate"])
    results = check_settled(params["checks"], params["dest"], params["timeout"], params["settle"])
    differing = sorted(set(r["certificate"] for r in results if r["state"] != "match"))
    module.exit_json(changed=False, served=results, differing=differing)


if __name__ == "__main__":
    main()
