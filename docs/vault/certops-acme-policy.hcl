# Least-privilege policy for certops.acme's shared store (store: vault).
# Assumes the defaults: KV v2 mounted at "secret", the collection's data under "certops-acme".
# With another vault_mount or vault_prefix, change the two paths below to match.
#
#   bao policy write certops-acme certops-acme-policy.hcl      (or: vault policy write ...)
#   bao token create -policy=certops-acme -period=24h          (or an AppRole with this policy)

# Certificates, keys, pending orders, account records, trust anchors and locks.
path "secret/data/certops-acme/*" {
  capabilities = ["create", "read", "update"]
}

# Listing the certificates, setting how many versions a secret keeps, and removing a
# certificate (orphans prune) with every version of it.
path "secret/metadata/certops-acme/*" {
  capabilities = ["read", "list", "update", "delete"]
}
