#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

# This file only documents the module; the work is done on the controller by the action
# plugin of the same name (plugins/action/certificate.py).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: certificate
short_description: Obtain and renew a whole batch of ACME certificates on the controller
version_added: 0.1.0
description:
  - Takes a list of certificates and decides for each whether to keep it, issue it or renew it
    (missing; names changed; key type changed; inside the renewal window, by default when a
    third of the lifetime is left, half for certificates living under 10 days).
  - Orders everything that is due in parallel over one HTTPS connection pool, answering
    http-01 statelessly (the proxy answers C(token.thumbprint) itself, as the
    C(certops.acme.edge) role configures it), and stores the results in the controller store.
  - Each certificate is ordered under a per-certificate lock after re-reading the store, so two
    concurrent runs never order the same certificate twice.
  - One failing certificate never loses the others; the task fails after storing every
    success, naming each failure.
  - When nothing is due, no request is sent to the CA at all.
  - Run it once per batch (C(run_once) in a play over many hosts); install the results with
    M(certops.acme.install).
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme
  - certops.acme.acme.ACCOUNT_KEY
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details: Reports what would be issued or renewed; sends nothing to the CA and writes nothing.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.acme, certops.acme.store]
options:
  certificates:
    description: The certificates to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the certificate in the store and on hosts (directory name), for example
            C(www.example.com) or C(wildcard.example.com).
        type: str
        required: true
      domains:
        description:
          - DNS names and IP addresses the certificate covers. The first DNS name becomes the
            subject CN. IDNs are converted to punycode, names lower-cased, trailing dots dropped.
        type: list
        elements: str
        required: true
      key_type:
        description: Private key type of the certificate.
        type: str
        choices: [ec256, ec384, rsa2048, rsa3072, rsa4096]
        default: ec256
      challenge:
        description:
          - How names are validated. V(http-01) is answered statelessly by the proxy (or through
            O(certificates[].webroot)); V(dns-01) needs O(dns_provider); V(tls-alpn-01) is
            answered on the hosts (see O(stage)).
          - V(dns-persist-01) (experimental, draft-ietf-acme-dns-persist as Let's Encrypt's Boulder
            implements it, with O(dns_persist_experimental)) validates with a TXT record at
            C(_validation-persist.NAME) published once, C(ISSUER; accounturi=ACCOUNT_URL); a name
            without one fails, before any challenge is answered, with the exact record to publish.
          - Default V(dns-01) when a name is a wildcard, else V(http-01).
        type: str
        choices: [http-01, dns-01, tls-alpn-01, dns-persist-01]
      webroot:
        description:
          - For V(http-01) on web servers this collection does not manage, the webroot on the
            hosts where token files are written (see O(stage) and M(certops.acme.challenge)).
        type: path
      renew_remaining_days:
        description: Renew when fewer than this many days of validity remain.
        type: float
      renew_remaining_fraction:
        description:
          - Renew when less than this fraction of the lifetime remains.
          - Default 1/3, or 1/2 for lifetimes under 10 days. Mutually exclusive with
            O(certificates[].renew_remaining_days).
        type: float
      force:
        description: Renew even when not due.
        type: bool
        default: false
      reuse_key:
        description: Keep the stored private key on renewal (default is a fresh key each time).
        type: bool
        default: false
      profile:
        description:
          - ACME certificate profile to request (for example Let's Encrypt's V(shortlived)), as a
            name, which the CA must offer, or as a mapping whose only key C(prefer) names a
            profile that is only preferred.
          - A name is checked against the profiles the CA's directory lists before anything is
            ordered; an unknown one fails this certificate with the list of offered profiles (and,
            with several CAs, moves on to the next).
          - A preference is ordered where the CA offers it; where it does not, the certificate is
            ordered under the CA's default, and the result says so in RV(certificates[].profile_note).
            No later run orders again for it alone; the next renewal asks again.
          - When unset and O(certificates[].domains) names an IP address, V(shortlived) is
            ordered if the CA offers it (Let's Encrypt certifies IP addresses under no other);
            a CA that lists profiles without it fails the certificate before ordering. A CA
            that lists no profiles gets none.
        type: raw
      preferred_chain:
        description:
          - Common name of the CA the chain should lead to, among the chains the CA offers
            (the default one and its alternates), for example an older root for old clients.
          - Matches the issuer of the chain's topmost certificate or any certificate in it. When
            no chain matches, the default chain is used.
        type: str
      dns:
        description:
          - The name of an entry of O(dns_providers) whose provider and credentials write this
            certificate's dns-01 records, so one batch can span zones at different providers.
            Implies V(dns-01) when O(certificates[].challenge) is not set.
          - Unset - the task's own O(dns_provider).
        type: str
      csr_src:
        description:
          - Path on the controller of a certificate signing request (PEM or DER) made elsewhere,
            for example with a key in an HSM. Its subjectAltName must list exactly
            O(certificates[].domains); its key decides the key type.
          - The store and M(certops.acme.install) then hold and ship the certificate and chain
            without C(privkey.pem) and C(haproxy.pem); the key stays where it is.
          - Exclusive with O(certificates[].key_src), O(certificates[].key_type) and
            O(certificates[].reuse_key). A CSR for another key renews the certificate.
        type: path
      key_src:
        description:
          - Path on the controller of a private key (PEM, RSA or EC, no passphrase) kept there by
            its owner. Every order is made for this key; it is read only to sign the request and
            is never copied into the store, a pending order, a result or a host (as with
            O(certificates[].csr_src), hosts get the certificate and chain only).
          - Another key at this path renews the certificate.
        type: path
  stage:
    description:
      - V(all) does everything in this task; certificates whose challenges are answered on hosts
        (O(certificates[].webroot), V(tls-alpn-01)) then fail with a hint.
      - V(prepare) completes every other certificate and opens the orders of those answered on
        hosts, returning their RV(challenges) for M(certops.acme.challenge).
      - V(complete) answers those challenges and stores the certificates.
    type: str
    choices: [all, prepare, complete]
    default: all
  dns_provider:
    description:
      - How dns-01 records are changed. V(rfc2136) (with O(dns_rfc2136)), V(lexicon) (with
        O(dns_lexicon); 100+ DNS provider APIs through the Python package C(dns-lexicon)), V(hook)
        (with O(dns_hook)), or C(package.module:Class) importable on the controller whose instances
        (built with O(dns_provider_options)) have C(add_txt(name, value)) and C(delete_txt(name, value)).
    type: str
  dns_lexicon:
    description:
      - The dns-lexicon provider for O(dns_provider=lexicon).
      - Options the task leaves out are read by lexicon from E(LEXICON_<PROVIDER>_<OPTION>), for
        example E(LEXICON_CLOUDFLARE_AUTH_TOKEN) (the credential types in C(docs/awx/) set them).
    type: dict
    suboptions:
      provider:
        description: The lexicon provider name, for example V(cloudflare), V(route53), V(powerdns), V(gandi).
        type: str
        required: true
      options:
        description:
          - The provider's options without the C(--), for example C(auth_token), or C(pdns_server)
            and C(auth_token) for PowerDNS. Never logged, and masked in errors.
        type: dict
      zone:
        description: The zone to change; found from the SOA of each record's name when left out.
        type: str
  dns_resolvers:
    description:
      - Resolvers (C(address) or C(address:port)) for finding zones (SOA) and following
        C(_acme-challenge) CNAMEs. Given, they are used for CNAMEs with every provider,
        V(rfc2136) included. Default - the system's, except that V(rfc2136) looks CNAMEs up at
        the server it updates.
    type: list
    elements: str
  dns_providers:
    description:
      - Named DNS providers for certificates that name one in O(certificates[].dns), each a mapping
        of the task's dns-01 options without the C(dns_) prefix - C(provider) (required),
        C(rfc2136), C(lexicon), C(hook), C(provider_options), C(check_servers), C(resolvers),
        C(follow_cname), C(propagation_timeout), C(propagation), C(propagation_wait). Unset ones take
        the task's value for the last five. Never logged.
      - 'For example C({internal: {provider: rfc2136, rfc2136: {server: 10.0.0.53, key_name: k,
        key_secret: ...}}, public: {provider: lexicon, lexicon: {provider: cloudflare}}}).'
    type: dict
  dns_follow_cname:
    description:
      - When C(_acme-challenge.NAME) is a CNAME (the acme-dns delegation pattern), write the record
        at the end of the chain, in whatever zone it lives (followed to 10 levels; loops fail the
        certificate). A lookup that cannot be answered writes at the name itself, with a warning.
    type: bool
    default: true
  dns_rfc2136:
    description:
      - RFC 2136 dynamic updates signed with TSIG.
      - Each key the task leaves out is read from E(CERTOPS_DNS_RFC2136_SERVER),
        E(CERTOPS_DNS_RFC2136_PORT), E(CERTOPS_DNS_RFC2136_KEY_NAME), E(CERTOPS_DNS_RFC2136_KEY_SECRET)
        or E(CERTOPS_DNS_RFC2136_KEY_ALGORITHM) (the TSIG credential type for AWX sets them).
    type: dict
    suboptions:
      server:
        description: Primary server address. Required, here or in the environment.
        type: str
      port:
        description: Its port; 53 when given nowhere.
        type: int
      key_name:
        description: TSIG key name. Required, here or in the environment.
        type: str
      key_secret:
        description: TSIG secret (base64). Required, here or in the environment. Never logged.
        type: str
      key_algorithm:
        description: TSIG algorithm; V(hmac-sha256) when given nowhere.
        type: str
        choices: [hmac-sha256, hmac-sha384, hmac-sha512]
      zone:
        description: Zone to update; found from the SOA when left out.
        type: str
  dns_hook:
    description:
      - Executable on the controller, called as C(HOOK add NAME VALUE) and C(HOOK del NAME VALUE)
        with C({"action", "name", "value"}) as JSON on stdin; non-zero exit fails the certificate.
    type: path
  dns_provider_options:
    description: Keyword arguments for a Python provider class. Never logged.
    type: dict
  dns_check_servers:
    description:
      - DNS servers (C(host:port)) that must serve every record before the CA is asked to look.
        Default - the zone's authoritative servers (RFC 2136), none for other providers.
    type: list
    elements: str
  dns_propagation:
    description:
      - How a batch knows its dns-01 records are out before the CA is asked to look. V(check) asks
        every checked server (O(dns_check_servers), else the zone's authoritative servers) until
        each answers every record, for up to O(dns_propagation_timeout) seconds. V(wait) asks no
        DNS server and waits O(dns_propagation_wait) seconds instead - for DNS the controller
        cannot query (split horizon, a firewalled primary); set O(dns_follow_cname=false) there
        too unless the resolvers answer.
      - An entry of O(dns_providers) may set its own C(propagation) and C(propagation_wait).
    type: str
    choices: [check, wait]
    default: check
  dns_propagation_wait:
    description: Seconds to wait with O(dns_propagation=wait), 0 to 3600.
    type: int
    default: 60
  dns_propagation_timeout:
    description: Seconds to wait for the records on every checked server.
    type: int
    default: 120
  dns_persist_experimental:
    description:
      - Allow O(certificates[].challenge=dns-persist-01), which follows an Internet-Draft that may
        still change. Every name's C(_validation-persist) record is looked up (through
        O(dns_resolvers)) and must name one of the CA's issuer domain names and this account (the
        account URL itself, or the hashed account URI when the CA's directory advertises
        C(accountHashPrefix)). A certificate lacking one fails with the record to publish and no
        challenge is answered; this is checked before the order when the directory names the issuer
        domains, else once the authorizations do (the opened order is left to expire).
    type: bool
    default: false
  dns_persist_warn_days:
    description: Warn when a C(_validation-persist) record's C(persistUntil) is fewer than this many days away.
    type: int
    default: 30
  caa_check:
    description:
      - Before ordering, look up the CAA records that govern each DNS name (RFC 8659, walking up
        from the name) and compare them with the C(caaIdentities) the CA's directory lists. A
        certificate that CAA forbids this CA to issue (also by the RFC 8657 C(accounturi) and
        C(validationmethods) parameters) fails at once, quoting the record, and nothing is ordered.
      - The CA's own check remains the authority; a CA that lists no C(caaIdentities), IP
        addresses and names whose lookup times out or fails are left to it.
    type: bool
    default: true
  fallback_after:
    description:
      - With several CAs in O(acme_directory), how many seconds one may take to answer at all
        before its certificates are ordered from the next CA. The last CA a certificate can go
        to has the whole O(timeout).
      - A CA that could not be reached is remembered in the store (5 minutes, doubling to an
        hour while it stays down); meanwhile it is passed over without a request when another
        CA follows, and given only this long when it is the last (also with a single CA).
    type: int
    default: 60
  caa_resolvers:
    description:
      - Resolvers for the CAA lookups, as C(address) or C(address:port) (IPv6 with a port in
        brackets). The system's resolvers when unset.
    type: list
    elements: str
  workers:
    description: How many orders run in parallel.
    type: int
    default: 4
  timeout:
    description: Seconds the whole batch may take before the remaining orders fail.
    type: int
    default: 600
  lock_timeout:
    description: Seconds to wait for another run that is issuing the same certificate.
    type: int
    default: 300
  wanted_by:
    description:
      - The party that wants these certificates (an inventory, a team). Each certificate the task
        orders or keeps records it in the store (a claim, written once), so that
        M(certops.acme.orphans), run by one party, judges only what that party claims and never
        prunes what another party still wants.
      - The roles give C(certops_certificates_wanted_by) (default V(inventory)). The default here,
        V(direct), keeps the certificates a playbook orders with this module apart from the
        roles' party.
      - Letters, digits and C(._:@/-), at most 128 characters.
    type: str
    default: direct
    version_added: 0.2.0
seealso:
  - module: certops.acme.account
  - module: certops.acme.install
"""

EXAMPLES = r"""
- name: Order or renew everything the proxies serve, once for the whole play
  certops.acme.certificate:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/account.key
    certificates:
      - name: www.example.com
        domains: [www.example.com, example.com]
      - name: api.example.com
        domains: [api.example.com]
        key_type: rsa2048
  run_once: true
  register: issued

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ issued.certificates | map(attribute='action') | list }}"
"""

RETURN = r"""
certificates:
  description: One result per certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
    action:
      description: V(keep), V(issue), V(renew), V(failed), or V(pending) (stage prepare, answered on hosts).
      type: str
    changed:
      description: Whether a new certificate was stored (or would be, in check mode).
      type: bool
    reason:
      description: Why this action was chosen.
      type: str
    domains:
      description: Normalised names.
      type: list
      elements: str
    not_after:
      description: Expiry of the stored certificate (ISO 8601), if any.
      type: str
    renewal_window:
      description:
        - The CA's suggested renewal window for the stored certificate (ACME Renewal Information,
          RFC 9773), with the point chosen inside it; null when the CA offers no ARI or has not
          been asked yet (a certificate is first asked about a day after issuance).
      type: dict
      contains:
        start:
          description: Window start (ISO 8601).
          type: str
        end:
          description: Window end (ISO 8601).
          type: str
        selected:
          description: When this certificate will be renewed, chosen at random inside the window.
          type: str
    days_left:
      description: Days until O(certificates[].name)'s stored certificate expires, to one decimal, if any.
      type: float
    serial:
      description: Serial number (hex) of the stored certificate, if any.
      type: str
    sha256:
      description: SHA-256 fingerprint of the stored certificate (DER), if any.
      type: str
    error:
      description:
        - Why this certificate failed, if it did. A certificate waiting out its failure backoff
          says C(failing since ..., next try after ...).
      type: str
    profile:
      description: The profile the stored certificate was ordered under (null when none was sent).
      type: str
    profile_note:
      description:
        - When O(certificates[].profile) was a preference the CA that issued the stored certificate
          does not offer, what was ordered instead; null otherwise.
      type: str
    directory:
      description: The ACME directory of the CA that issued the stored certificate, if known.
      type: str
    tried:
      description:
        - With several CAs, the CAs this run tried for the certificate before the one the result
          is from, each as the CA URL, a colon and why it failed; empty otherwise.
      type: list
      elements: str
    lock_lost:
      description:
        - True when this run lost the certificate's store lock mid-run (its shared-store lease
          lapsed, or another run took the lock over); nothing was finalized or stored for it by
          this run, and the run that holds the lock issues it.
      type: bool
    renew_at:
      description:
        - When the stored certificate becomes due (ISO 8601), that is the point chosen in the CA's ARI
          window, else expiry minus the renewal threshold; null without a certificate.
      type: str
    failing_since:
      description: When the failures in a row of this certificate began (ISO 8601), or null.
      type: str
    next_try_at:
      description:
        - When a failing certificate is ordered again at the earliest (ISO 8601), or null. Until
          then runs report it failed without contacting the CA, unless its settings change or
          O(certificates[].force) is set. The wait doubles from an hour to a day (less up to a
          fifth, at random), or is the CA's Retry-After when longer.
      type: str
    failures:
      description: Failed attempts in a row (0 when not failing).
      type: int
next_run_due_by:
  description:
    - The latest time the next run should start (ISO 8601), that is the earliest renewal point or
      failing certificate's next try, now after any other failure; null when nothing is stored.
  returned: always
  type: str
challenges:
  description:
    - With O(stage=prepare), the challenges to put in place on hosts (for
      M(certops.acme.challenge)). No key material.
  returned: always
  type: list
  elements: dict
acme_requests:
  description: Requests sent to the ACME server in this task, by kind.
  returned: always
  type: dict
account_url:
  description: The account URL used, when anything was ordered.
  returned: always
  type: str
store:
  description:
    - The store used, for example C(files at /root/.local/share/certops-acme), or for a shared store
      its first address, KV mount and prefix. Never a secret.
  returned: always
  type: str
store_requests:
  description: Requests sent to a shared store in this task (0 for the file store).
  returned: always
  type: int
claimed:
  description:
    - Certificates kept by this task that did not yet record O(wanted_by)'s claim, which this task
      recorded (bookkeeping in the store, like a cached renewal window - it does not make the task
      changed; in check mode, would record).
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
"""
