# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""HAProxy's runtime API (the admin socket): swap a certificate into the running process.

Used by the haproxy_runtime_cert module and by the pull agent's apply step (_pull_apply.py).
Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

#: An answer longer than this is not one of the few lines these commands get back.
MAX_ANSWER = 1024 * 1024


class RuntimeRefused(Exception):
    """HAProxy answered, but did not take the certificate; the message quotes it."""


def runtime_command(path, command, timeout):
    """Send one command to HAProxy's runtime API and return its whole answer (bounded)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode("ascii"))
        chunks, size = [], 0
        while size < MAX_ANSWER:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace").strip()


def swap_certificate(admin_socket, path, timeout):
    """Load the current content of ``path`` into HAProxy and commit it. True when swapped; False
    when HAProxy does not know ``path`` (a reload loads it). Raises RuntimeRefused when HAProxy
    refuses it, OSError when the socket cannot be used."""
    with open(path) as handle:
        pem = handle.read().strip()
    if "\n\n" in pem:
        raise RuntimeRefused("%s contains an empty line, which ends a runtime API payload" % path)
    answer = runtime_command(admin_socket, "set ssl cert %s <<\n%s\n\n" % (path, pem), timeout)
    # HAProxy 2.6: "Can't replace a certificate which is not referenced by the configuration!"
    if "not referenced" in answer.lower():
        return False
    if "transaction" not in answer.lower():
        raise RuntimeRefused("HAProxy refused the new certificate %s: %s" % (path, answer))
    answer = runtime_command(admin_socket, "commit ssl cert %s\n" % path, timeout)
    if "success" not in answer.lower():
        runtime_command(admin_socket, "abort ssl cert %s\n" % path, timeout)
        raise RuntimeRefused("HAProxy could not commit %s: %s" % (path, answer))
    return True
