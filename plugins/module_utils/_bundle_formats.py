# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""Extra files of an installed bundle (PKCS#12, DER, a combined PEM), as the host sees them.

The controller builds them (formats.py) and ships them with the bundle, into the same version
directory. A PKCS#12 file is encrypted with a fresh salt each time it is built, so its bytes say
nothing about whether it is still what is wanted; what does is its source - a digest of what it
was built from (the bundle's fingerprint, its type, options and passphrase) - which the
controller computes again without building it. Each version directory keeps a manifest of its
extra files: the source of each, the digest of the bytes written and the mode and owner given.
A host holds the wanted extras when every file still has that digest, mode and owner; the
bundle fingerprint the host reports then folds in the sources, so an idempotent run compares one
fingerprint per certificate and ships nothing, as for a bundle without extras.

Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re

from ansible_collections.certops.acme.plugins.module_utils import _host_files

MANIFEST = ".formats.json"
MAX_MANIFEST = 64 * 1024
#: An extra file's name: one plain file in the certificate's directory.
_FILE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def usable_file_name(name):
    """True for an extra file's name (not a bundle file, not hidden, no path)."""
    return isinstance(name, str) and _FILE.match(name) is not None and name not in _host_files.BUNDLE_FILES


def with_extras(fingerprint, sources):
    """The fingerprint of a bundle with extra files (``{file: source}``); the bundle's own
    fingerprint when there are none, so bundles without extras compare as before."""
    if fingerprint is None or not sources:
        return fingerprint
    combined = hashlib.sha256(fingerprint.encode("ascii"))
    for name in sorted(sources):
        combined.update(("%s %s\n" % (name, sources[name])).encode("ascii"))
    return "sha256:" + combined.hexdigest()


def read_manifest(cert_dir):
    """The manifest of ``cert_dir`` ({file: entry}), {} when there is none, None when it is not
    one (damaged, too large)."""
    path = os.path.join(cert_dir, MANIFEST)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST + 1)
    except (IOError, OSError):
        return {} if not os.path.lexists(path) else None
    try:
        manifest = json.loads(raw.decode("ascii")) if len(raw) <= MAX_MANIFEST else None
    except ValueError:
        return None
    if not isinstance(manifest, dict) or not all(
            usable_file_name(name) and isinstance(entry, dict) and isinstance(entry.get("source"), str)
            and isinstance(entry.get("sha256"), str) and isinstance(entry.get("mode"), int)
            for name, entry in manifest.items()):
        return None
    return manifest


def held_sources(cert_dir):
    """``{file: source}`` of the extra files ``cert_dir`` holds intact (content, mode and owner
    as its manifest recorded them), or None when one is not."""
    manifest = read_manifest(cert_dir)
    if manifest is None:
        return None
    for name, entry in manifest.items():
        path = os.path.join(cert_dir, name)
        try:
            if _host_files.sha256_of_file(path) != entry["sha256"] or _host_files.file_meta_differs(
                    path, entry["mode"], entry.get("uid"), entry.get("gid")):
                return None
        except OSError:
            return None
    return dict((name, entry["source"]) for name, entry in manifest.items())


def held_fingerprint(cert_dir):
    """The fingerprint of what ``cert_dir`` holds: its bundle files and its intact extras."""
    base = _host_files.bundle_fingerprint(_host_files.held_digests(cert_dir))
    sources = held_sources(cert_dir)
    return None if sources is None else with_extras(base, sources)


def manifest_bytes(extras):
    """The manifest for extra files as written: ``{file: (data, mode, uid, gid, source)}``."""
    manifest = dict((name, {"source": source, "sha256": hashlib.sha256(data).hexdigest(), "mode": mode,
                            "uid": uid, "gid": gid})
                    for name, (data, mode, uid, gid, source) in extras.items())
    return json.dumps(manifest, sort_keys=True).encode("ascii")
