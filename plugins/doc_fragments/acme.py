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
      - Or a list of CAs in order of preference, each a URL or a mapping with C(directory) and
        any of C(account_key_src), C(account_key_content), C(account_key_passphrase),
        C(eab_kid), C(eab_hmac_key), C(ca_path), C(validate_certs), which replace the task's
        for that CA (an entry naming an account key replaces all of the task's key options).
      - With a list, M(certops.acme.account) makes sure of the account at every CA;
        M(certops.acme.certificate) orders a certificate from the next CA when one fails in a
        way retrying will not fix (rate limit, unreachable, CAA, a refused profile); a renewal
        goes to the CA that issued the stored certificate first; M(certops.acme.revoke) revokes
        each certificate at the CA that issued it.
    type: raw
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
  account_key_in_store:
    description:
      - Keep the account key in the store (O(store)) instead of a file or the task, so a fresh
        controller or AWX container that can read a shared store needs nothing else.
        M(certops.acme.account) with O(certops.acme.account#module:account_key_create=true) makes it once.
      - Defaults to E(CERTOPS_ACME_ACCOUNT_KEY_IN_STORE) (V(true)/V(false)), else V(false). Not with
        O(account_key_src) or O(account_key_content).
    type: bool
  account_key_src:
    description:
      - Path on the controller to the PEM account private key (EC P-256/P-384 or RSA).
      - Mutually exclusive with O(account_key_content).
      - When neither this nor O(account_key_content) is given and E(CERTOPS_ACME_ACCOUNT_KEY) is
        unset, E(CERTOPS_ACME_ACCOUNT_KEY_FILE) is used (the AWX credential type sets it).
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
  store:
    description:
      - Where issued certificates, keys, pending orders, the account record and the locks live.
      - V(file) is a directory on the controller (O(store_path)). V(vault) is a KV v2 engine on
        OpenBao or HashiCorp Vault shared by several controllers (AWX execution nodes, HA
        controllers); locks there are leases, so two controllers never order the same certificate.
      - Defaults to E(CERTOPS_ACME_STORE_BACKEND), else V(file).
    type: str
    choices: [file, vault]
  store_path:
    description:
      - With O(store=file), the directory on the controller holding issued certificates and keys
        (0700, files 0600).
      - Defaults to E(CERTOPS_ACME_STORE), else C($XDG_DATA_HOME/certops-acme), else
        C(~/.local/share/certops-acme). In AWX each job starts with an empty file store; the
        C(certops.acme.install) C(state=inspect) step refills it from the hosts, or use O(store=vault).
    type: path
  vault_url:
    description:
      - With O(store=vault), the address of every node of the cluster, for example
        V(https://vault1.example.com:8200). A node that is down, sealed or between leaders is
        skipped for the next one. Defaults to E(VAULT_ADDR) (comma-separated for several).
    type: list
    elements: str
  vault_token:
    description:
      - Token for O(store=vault); defaults to E(VAULT_TOKEN). Never logged.
      - Give this or O(vault_role_id) and O(vault_secret_id).
    type: str
  vault_role_id:
    description: AppRole role ID (instead of a token); defaults to E(CERTOPS_VAULT_ROLE_ID).
    type: str
  vault_secret_id:
    description: AppRole secret ID; defaults to E(CERTOPS_VAULT_SECRET_ID). Never logged.
    type: str
  vault_namespace:
    description: Vault Enterprise / OpenBao namespace; defaults to E(VAULT_NAMESPACE).
    type: str
  vault_mount:
    description: Mount point of the KV v2 engine; defaults to E(CERTOPS_VAULT_MOUNT), else V(secret).
    type: str
  vault_prefix:
    description:
      - Path under O(vault_mount) that holds the collection's data; defaults to
        E(CERTOPS_VAULT_PREFIX), else V(certops-acme). The shipped policy
        C(docs/vault/certops-acme-policy.hcl) grants exactly this path.
    type: str
  vault_ca_cert:
    description: PEM bundle that signs the Vault servers' certificates; defaults to E(VAULT_CACERT).
    type: path
  vault_validate_certs:
    description: Verify the Vault servers' certificates. Only turn this off for throw-away test servers.
    type: bool
    default: true
  vault_timeout:
    description:
      - Seconds one store operation may take, retries across nodes included (a leader election
        takes a few seconds). Past it, the task fails naming the store, and nothing is ordered.
    type: int
    default: 30
  vault_lock_lease:
    description:
      - Seconds a certificate lock lasts without renewal. Held locks are renewed while the task
        runs; a controller that dies blocks its certificates for at most this long.
    type: int
    default: 60
notes:
  - Set the store options once for every plugin with C(module_defaults) and the
    C(group/certops.acme.store) action group.
"""
