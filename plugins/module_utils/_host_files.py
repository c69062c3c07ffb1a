# -*- coding: utf-8 -*-
"""Atomic, permission-exact file writes. Standard library only: this file ships to targets.

Used by the target-side ``install`` module and by the controller store, so both follow the
same rule: a file is written to a temporary file created 0600 in the same directory, synced,
given its owner and mode, then renamed over the old one. A reader (or a process killed half
way) only ever sees the old complete file or the new complete file, and a key is never
readable by others, not even for a moment, whatever the umask.
"""

from __future__ import absolute_import, division, print_function

import grp
import hashlib
import os
import pwd
import shutil
import tempfile
import time

__metaclass__ = type


def resolve_uid(owner):
    """uid for a user name or numeric string; None when ``owner`` is empty."""
    if owner in (None, ""):
        return None
    if isinstance(owner, int) or str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ValueError("owner: user %r does not exist on this host" % owner) from None


def resolve_gid(group):
    if group in (None, ""):
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError("group: group %r does not exist on this host" % group) from None


def sha256_of_file(path):
    """Hex SHA-256 of a file's content, or None if it does not exist."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
    except (IOError, OSError):
        return None
    return digest.hexdigest()


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data, mode, uid=None, gid=None):
    """Write ``data`` (bytes) to ``path`` atomically with exactly ``mode`` and owner."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".certops-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def ensure_directory(path, mode, uid=None, gid=None):
    """Create ``path`` (and parents, 0755) if missing; give the leaf exactly ``mode``/owner.

    Returns True when anything changed.
    """
    changed = False
    if not os.path.isdir(path):
        parent = os.path.dirname(os.path.abspath(path))
        if parent and not os.path.isdir(parent):
            try:
                os.makedirs(parent, 0o755)
            except OSError:
                if not os.path.isdir(parent):  # another process may have made it meanwhile
                    raise
        try:
            os.mkdir(path, 0o700)
            changed = True
        except OSError:
            if not os.path.isdir(path):  # lost a race with another run creating it: fine
                raise
    stat = os.stat(path)
    if (stat.st_mode & 0o7777) != mode:
        os.chmod(path, mode)
        changed = True
    if (uid is not None and stat.st_uid != uid) or (gid is not None and stat.st_gid != gid):
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        changed = True
    return changed


def file_meta_differs(path, mode, uid=None, gid=None):
    """True when ``path`` differs in mode or owner from what is wanted (its content is the
    caller's to compare: it has usually hashed the file already)."""
    stat = os.stat(path)
    if (stat.st_mode & 0o7777) != mode:
        return True
    if uid is not None and stat.st_uid != uid:
        return True
    if gid is not None and stat.st_gid != gid:
        return True
    return False


#: The files of an installed bundle, with HAProxy's combined PEM; keys in KEY_FILES.
BUNDLE_FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem", "haproxy.pem")
KEY_FILES = ("privkey.pem", "haproxy.pem")
CERTIFICATE_FILES = tuple(f for f in BUNDLE_FILES if f not in KEY_FILES)


def bundle_files(cert_pem, chain_pem, key_pem):
    """The BUNDLE_FILES contents (bytes) for one certificate; without the KEY_FILES when there is
    no key (a certificate ordered for a key kept elsewhere: csr_src, key_src)."""
    fullchain = cert_pem + chain_pem
    files = {"cert.pem": cert_pem, "chain.pem": chain_pem, "fullchain.pem": fullchain}
    if key_pem:
        files.update({"privkey.pem": key_pem, "haproxy.pem": fullchain + key_pem})
    return files


def bundle_fingerprint(digests):
    """One fingerprint for a whole bundle from the hex SHA-256 of each of its BUNDLE_FILES
    (``{file: hex}``): what the controller and a host compare instead of shipping the files.
    Covers the files present (a keyless bundle has no KEY_FILES; a key file missing from a bundle
    with a key changes it); None without the certificate files."""
    if any(digests.get(filename) is None for filename in CERTIFICATE_FILES):
        return None
    combined = hashlib.sha256()
    for filename in BUNDLE_FILES:
        if digests.get(filename) is not None:
            combined.update(("%s %s\n" % (filename, digests[filename])).encode("ascii"))
    return "sha256:" + combined.hexdigest()


def fingerprint_of_files(files):
    """bundle_fingerprint of bundle contents (``{file: bytes}``, e.g. from bundle_files)."""
    return bundle_fingerprint(dict((f, hashlib.sha256(data).hexdigest()) for f, data in files.items()))


def meta_as_wanted(cert_dir, key_mode, cert_mode, dir_mode, uid=None, gid=None):
    """True when each held bundle file and the directory have the wanted mode and owner (the key
    files may be absent by design, in a keyless bundle: the fingerprint decides that)."""
    present = [f for f in BUNDLE_FILES if f not in KEY_FILES or os.path.lexists(os.path.join(cert_dir, f))]
    try:
        return not (file_meta_differs(os.path.realpath(cert_dir), dir_mode, uid, gid) or any(
            file_meta_differs(os.path.join(cert_dir, f), key_mode if f in KEY_FILES else cert_mode, uid, gid)
            for f in present))
    except OSError:
        return False


def held_digests(cert_dir):
    """Hex SHA-256 of each of the BUNDLE_FILES held in ``cert_dir`` (None for a missing one)."""
    return dict((f, sha256_of_file(os.path.join(cert_dir, f))) for f in BUNDLE_FILES)


def swap_in_version(versions_dir, link, version, files, dir_mode, uid=None, gid=None, keep=2, owners=None):
    """Write ``files`` ({name: (bytes, mode)}) into ``versions_dir/version``, then point the
    symlink ``link`` at it with one rename, and keep only the newest ``keep`` versions.

    A reader (or a run killed half way) sees the old complete version or the new one, never a
    key of one certificate beside the certificate of another. A write that fails half way
    (a full disk) removes its partial version directory and raises the OSError. A plain
    directory where the link belongs (from before versions, or made by hand) is moved aside
    into the versions once the new version is complete. ``owners`` ({name: (uid, gid)}) gives
    files an owner of their own.
    """
    ensure_directory(versions_dir, dir_mode, uid, gid)
    version_dir = os.path.join(versions_dir, version)
    os.mkdir(version_dir, 0o700)
    try:
        for filename, (data, mode) in files.items():
            file_uid, file_gid = (owners or {}).get(filename, (uid, gid))
            atomic_write(os.path.join(version_dir, filename), data, mode, file_uid, file_gid)
        ensure_directory(version_dir, dir_mode, uid, gid)
    except BaseException:
        shutil.rmtree(version_dir, ignore_errors=True)
        raise
    if os.path.isdir(link) and not os.path.islink(link):
        os.rename(link, os.path.join(versions_dir, "00000000T000000-migrated"))
    tmp_name = ".%s.%d.%d.tmp" % (os.path.basename(link), os.getpid(), int(time.time() * 1000000))
    tmp_link = os.path.join(os.path.dirname(link), tmp_name)
    os.symlink(os.path.relpath(version_dir, os.path.dirname(link)), tmp_link)
    os.rename(tmp_link, link)
    for old in sorted(e for e in os.listdir(versions_dir) if not e.startswith("."))[:-keep]:
        if old != version:
            shutil.rmtree(os.path.join(versions_dir, old), ignore_errors=True)


def version_stamp():
    """A version directory's name: UTC time to the microsecond, so versions sort by age."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-%06d" % (time.time() % 1 * 1000000)


def swap_in_bundle(dest, name, wanted, uid, gid, dir_mode, owners=None):
    """Install one bundle as the install module does (and the pull agent's apply step): the whole
    bundle in a new version directory under ``dest/.versions/NAME``, then ``dest/NAME`` (a symlink)
    pointed at it with one rename (swap_in_version)."""
    link = os.path.join(dest, name)
    versions = os.path.join(dest, ".versions", name)
    ensure_directory(os.path.join(dest, ".versions"), dir_mode, uid, gid)
    swap_in_version(versions, link, version_stamp(), wanted, dir_mode, uid, gid, keep=2, owners=owners)
