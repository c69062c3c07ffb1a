# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""Which play installed each certificate directory under a ``dest`` (the install module's scope).

Two plays may install into the same directory (a mail play and a web play on one host). Each
sees the other's certificates as "not listed here"; removing those would delete live keys. So
every certificate directory the install module writes or verifies is marked with the scope of
the task that lists it (``dest/.scopes/NAME``, one line), and a task only ever removes (or
warns about) unlisted directories marked with its own scope. A directory without a mark was
installed before marks were kept, or by hand: it is reported, never removed.

Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re

from ansible_collections.certops.acme.plugins.module_utils import _host_files

SCOPES_DIR = ".scopes"
#: The default scope of a task that names none.
DEFAULT_SCOPE = "default"
_SCOPE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}\Z")
_MAX_MARK = 256


def usable_scope(value):
    """True for a scope name: letters, digits and ._:@/-, 1 to 128 characters."""
    return isinstance(value, str) and _SCOPE.match(value) is not None


def _mark_path(dest, name):
    return os.path.join(dest, SCOPES_DIR, name)


def scope_of(dest, name):
    """The scope that marked ``dest/name``, or None (no mark, or a mark that is not a scope)."""
    try:
        with open(_mark_path(dest, name), "rb") as handle:
            text = handle.read(_MAX_MARK).decode("ascii", "replace").strip()
    except (IOError, OSError):
        return None
    return text if usable_scope(text) else None


def mark(dest, names, scope, dir_mode, uid, gid, check_mode):
    """Mark each of ``names`` as ``scope``'s where it is not already; returns those marked."""
    marked = [name for name in names if scope_of(dest, name) != scope]
    if marked and not check_mode:
        _host_files.ensure_directory(os.path.join(dest, SCOPES_DIR), dir_mode, uid, gid)
        for name in marked:
            _host_files.atomic_write(_mark_path(dest, name), (scope + "\n").encode("ascii"), 0o644, uid, gid)
    return marked


def forget(dest, name):
    """Drop the mark of a removed certificate directory."""
    try:
        os.unlink(_mark_path(dest, name))
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise


def sort_unlisted(dest, unlisted, scope):
    """Split certificate directories no task lists here into ``scope``'s own and the unmarked
    ones; those another scope marked are not this task's business and are left out."""
    own, unmarked = [], []
    for name in unlisted:
        held_by = scope_of(dest, name)
        if held_by == scope:
            own.append(name)
        elif held_by is None:
            unmarked.append(name)
    return own, unmarked
