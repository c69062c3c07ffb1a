# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""What a TLS listener serves, asked as a client: the leaf presented for a server name, and the
installed leaf to compare it with. Used from the host by the served module and by the pull
agent's apply step (_pull_apply.py), so both judge a listener the same way.

Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import socket
import ssl
import time

from ansible_collections.certops.acme.plugins.module_utils._starttls import StartTlsRefused, start_tls

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


def check_settled(checks, dest, timeout, settle=0.0):
    """check_one for every check; those that do not match are asked again, every 0.2 s, for up
    to ``settle`` seconds (a reload signalled a moment ago starts its workers asynchronously)."""
    results = [check_one(item, dest, timeout) for item in checks]
    give_up = time.monotonic() + settle
    while time.monotonic() < give_up and any(r["state"] not in ("match", "not_installed") for r in results):
        time.sleep(0.2)
        results = [r if r["state"] in ("match", "not_installed") else check_one(item, dest, timeout)
                   for r, item in zip(results, checks)]
    return results
