# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection to the ACME server; shared by every plugin that talks ACME.
    DOCUMENTATION = r"""
options:
  acme_directory:
    description:
      - URL of the ACME directory, for example
        C(https://acme-v02.api.letsencrypt.org/directory) or
        C(https://acme-staging-v02.api.letsencrypt.org/directory).
      - Required. When the task leaves it out, the environment variable E(CERTOPS_ACME_DIRECTORY)
        is used (for example set by an AWX credential).
    type: str
  validate_certs:
    description:
      - Verify the ACME server's HTTPS certificate. Only turn this off for throw-away test CAs.
    type: bool
    default: true
  ca_path:
    description:
      - PEM bundle on the controller that signs the ACME server's HTTPS certificate (private
        CAs, Pebble). Takes precedence over C(REQUESTS_CA_BUNDLE).
    type: path
  request_timeout:
    description: Seconds to wait for one HTTP answer from the ACME server.
    type: int
    default: 30
notes:
  - All ACME traffic runs on the controller inside this action, over one kept-alive HTTPS
    connection pool; targets never need C(acme), C(cryptography) or network access to the CA.
  - Set these options once for every plugin with C(module_defaults) and the
    C(group/certops.acme.acme) action group.
"""

    ACCOUNT_KEY = r"""
options:
  account_key_src:
    description:
      - Path on the controller to the PEM account private key (EC P-256/P-384 or RSA).
      - Mutually exclusive with O(account_key_content).
    type: path
    aliases: [account_key_path]
  account_key_content:
    description:
      - The PEM account private key itself, for example injected by an AWX credential.
      - When neither this nor O(account_key_src) is given, E(CERTOPS_ACME_ACCOUNT_KEY) is used.
      - Never logged.
    type: str
  account_key_passphrase:
    description:
      - Passphrase of an encrypted account key. Never logged.
      - Defaults to E(CERTOPS_ACME_ACCOUNT_KEY_PASSPHRASE) when the key comes from the environment.
    type: str
"""

    STORE = r"""
options:
  store_path:
    description:
      - Directory on the controller holding issued certificates and keys (0700, files 0600).
      - Defaults to E(CERTOPS_ACME_STORE), else C($XDG_DATA_HOME/certops-acme), else
        C(~/.local/share/certops-acme). In AWX each job starts with an empty store; the
        C(certops.acme.install) C(state=inspect) step refills it from the hosts.
    type: path
"""
