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

import hashlib
import socket
import ssl
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils._starttls import PROTOCOLS, StartTlsRefused, start_tls

MAX_PEM = 1024 * 1024


def _tlv(data, pos):
    """(tag, start of value, length) of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, pos, length


def der_serial(der):
    """The serial number (hex) of a DER certificate: Certificate > tbsCertificate > [0] version? > serial."""
    try:
        _ignored, pos, _ignored = _tlv(der, 0)
        _ignored, pos, _ignored = _tlv(der, pos)
        tag, start, length = _tlv(der, pos)
        if tag == 0xA0:  # explicit version
            tag, start, length = _tlv(der, start + length)
        if tag != 0x02:
            return ""
        return format(int.from_bytes(der[start:start + length], "big"), "x")
    except IndexError:
        return ""


def installed_leaf(path):
    """DER of the first certificate in a PEM file, or None."""
    try:
        with open(path, "r") as handle:
            text = handle.read(MAX_PEM)
    except (IOError, OSError):
        return None
    end = text.find("-----END CERTIFICATE-----")
    if "-----BEGIN CERTIFICATE-----" not in text or end < 0:
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(text[:end + len("-----END CERTIFICATE-----")])
    except ValueError:
        return None


def proxy_header(sock):
    """A PROXY protocol v1 line naming this connection's own two ends."""
    local, peer = sock.getsockname(), sock.getpeername()
    family = "TCP6" if sock.family == socket.AF_INET6 else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (family, local[0], peer[0], local[1], peer[1])).encode("ascii")


#: TLS 1.2 suites that only a certificate of that algorithm can serve.
ALGORITHM_SUITES = {
    "ecdsa": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
    "rsa": "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305",
}


def served_leaf(address, port, server_name, timeout, proxy_protocol=False, key_algorithm="", starttls="none"):
    """(DER or None, error) of what the listener presents for ``server_name``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we compare, we do not trust
    if key_algorithm:
        # TLS 1.3 suites do not name the certificate's algorithm: ask in TLS 1.2 with only
        # that algorithm's suites, as a client that knows only it would.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ALGORITHM_SUITES[key_algorithm])
    sni = "certops-served-check." + server_name[2:] if server_name.startswith("*.") else server_name
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            if proxy_protocol:
                raw.sendall(proxy_header(raw))
            start_tls(raw, starttls)
            with context.wrap_socket(raw, server_hostname=sni) as tls:
                return tls.getpeercert(binary_form=True), ""
    except StartTlsRefused as error:
        return None, "refused: STARTTLS (%s): the server %s" % (starttls, error)
    except ssl.SSLError as error:
        return None, "refused: %s" % (error.reason or error)
    except (socket.timeout, OSError) as error:
        return None, "unreachable: %s" % error


def check_one(item, dest, timeout):
    result = {"certificate": item["certificate"], "server_name": item["server_name"],
              "address": item["address"], "port": item["port"], "starttls": item.get("starttls") or "none",
              "served_serial": "", "installed_serial": "", "error": ""}
    installed = installed_leaf("%s/%s/cert.pem" % (dest.rstrip("/"), item["certificate"]))
    if installed is None:
        result.update(state="not_installed", error="no readable cert.pem")
        return result
    result["installed_serial"] = der_serial(installed)
    served, error = served_leaf(item["address"], item["port"], item["server_name"], timeout,
                                item.get("proxy_protocol") or False, item.get("key_algorithm") or "",
                                item.get("starttls") or "none")
    if served is None:
        result.update(state=error.split(":", 1)[0], error=error)
    else:
        result["served_serial"] = der_serial(served)
        same = hashlib.sha256(served).digest() == hashlib.sha256(installed).digest()
        result["state"] = "match" if same else "differs"
    return result


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
    results = [check_one(item, params["dest"], params["timeout"]) for item in params["checks"]]
    give_up = time.monotonic() + params["settle"]
    while time.monotonic() < give_up and any(r["state"] not in ("match", "not_installed") for r in results):
        time.sleep(0.2)
        results = [r if r["state"] in ("match", "not_installed") else check_one(item, params["dest"], params["timeout"])
                   for r, item in zip(results, params["checks"])]
    differing = sorted(set(r["certificate"] for r in results if r["state"] != "match"))
    module.exit_json(changed=False, served=results, differing=differing)


if __name__ == "__main__":
    main()
