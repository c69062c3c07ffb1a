import datetime

from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.module_utils._acme.adoption import AdoptionPolicy, adopt_held
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_ca, make_chain, make_leaf

DAY = datetime.timedelta(days=1)
ROOT = make_ca("Trusted Root")


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def held(name, key_pem, leaf, chain):
    return {"name": name, "path": f"/etc/certs/{name}",
            "files": {"cert.pem": pem(leaf), "chain.pem": "".join(pem(c) for c in chain),
                      "privkey.pem": key_pem.decode()}}


def policy(anchors=(ROOT[1],), **wanted):
    return AdoptionPolicy(anchors=list(anchors), min_remaining=DAY,
                          wanted={name: normalize_names(domains) for name, domains in wanted.items()})


def test_an_empty_store_adopts_a_certificate_that_chains_to_a_trusted_root(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy(www=["www.example.com"]))
    assert summary[0]["adopted"] is True, summary
    assert "privkey.pem" not in str(summary) and "PRIVATE" not in str(summary)
    stored = store.load("www")
    assert stored.key_pem == key_pem and stored.meta["source"] == "adopted from edge1"


def test_a_self_signed_placeholder_that_outlives_the_store_certificate_is_not_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT, days_left=30)
    store.save("www", key_pem, leaf, chain, {})
    snake_key, snakeoil = make_leaf(None, days_left=3650, days_total=3650)
    # Even when its own certificate is configured as a trust anchor, self-signed is refused.
    summary = adopt_held(store, [held("www", snake_key, snakeoil, [])], "edge1",
                         policy(anchors=[ROOT[1], snakeoil]))
    assert summary[0]["adopted"] is False and summary[0]["problem"].startswith("self-signed")
    assert store.load("www").key_pem == key_pem


def test_a_certificate_from_an_unknown_root_is_not_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=make_ca("Someone Else's Root"))
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy())
    assert "does not verify to a trusted root" in summary[0]["problem"]
    assert store.load("www") is None


def test_without_any_trust_anchor_nothing_is_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy(anchors=()))
    assert "no trust anchor" in summary[0]["problem"] and store.load("www") is None


def test_a_certificate_that_does_not_cover_the_wanted_names_is_not_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(names=("www.example.com",), root=ROOT)
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1",
                         policy(www=["www.example.com", "shop.example.com"]))
    assert summary[0]["problem"] == "does not cover shop.example.com"
    assert store.load("www") is None


def test_a_store_certificate_is_never_replaced_by_another_issuers(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT, days_left=20)
    store.save("www", key_pem, leaf, chain, {})
    other_root = make_ca("Other Trusted Root")
    other_intermediate = make_ca("Other Intermediate", issuer=other_root)
    other_key, other_leaf = make_leaf(other_intermediate, days_left=80)
    summary = adopt_held(store, [held("www", other_key, other_leaf, [other_intermediate[1]])], "edge1",
                         policy(anchors=[ROOT[1], other_root[1]]))
    assert "never replaced across issuers" in summary[0]["problem"]
    assert store.load("www").key_pem == key_pem


def test_the_store_remembers_the_chain_tops_its_ca_issued_through(tmp_path):
    store = FileStore(str(tmp_path))
    intermediate = make_ca("Issuing Intermediate", issuer=ROOT)
    key_pem, leaf = make_leaf(intermediate, days_left=30)
    store.save("ordered", key_pem, leaf, [intermediate[1]], {"order_url": "https://ca/order/1"})
    adopted_key, adopted_leaf, adopted_chain = make_chain(root=make_ca("Adopted Root"))
    store.save("adopted", adopted_key, adopted_leaf, adopted_chain, {"order_url": None})
    assert [a.subject for a in store.anchors()] == [intermediate[1].subject]
    # A host's newer certificate through the same intermediate verifies against that anchor alone.
    sibling_key, sibling = make_leaf(intermediate, days_left=85)
    summary = adopt_held(store, [held("ordered", sibling_key, sibling, [intermediate[1]])], "edge1",
                         policy(anchors=store.anchors()))
    assert summary[0]["adopted"] is True, summary


def test_a_key_that_does_not_match_is_not_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    _ignored, leaf, chain = make_chain(root=ROOT)
    other_key, _ignored, _ignored = make_chain(root=ROOT)
    summary = adopt_held(store, [held("www", other_key, leaf, chain)], "edge1", policy())
    assert summary[0]["adopted"] is False and "does not match" in summary[0]["problem"]
    assert store.load("www") is None


def test_an_almost_expired_certificate_is_not_adopted(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(days_left=0.5, root=ROOT)
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy())
    assert "too soon" in summary[0]["problem"] and store.load("www") is None


def test_a_newer_store_certificate_is_not_replaced_by_an_older_held_one(tmp_path):
    store = FileStore(str(tmp_path))
    new_key, new_leaf, new_chain = make_chain(days_left=80, root=ROOT)
    store.save("www", new_key, new_leaf, new_chain, {})
    old_key, old_leaf, old_chain = make_chain(days_left=20, root=ROOT)
    summary = adopt_held(store, [held("www", old_key, old_leaf, old_chain)], "edge1", policy())
    assert summary[0]["adopted"] is False
    assert store.load("www").key_pem == new_key


def test_check_mode_adopts_nothing(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy(), adopt=False)
    assert store.load("www") is None


def test_what_the_store_already_has_is_not_verified_again(tmp_path):
    """The idempotent run: every host holds the store's certificates; no path is built for them
    (no anchors given here, which would refuse anything that had to be verified)."""
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {})
    [entry] = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", policy(anchors=()))
    assert entry["adopted"] is False and "problem" not in entry


def test_the_store_and_system_anchors_are_loaded_only_when_something_is_verified(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {})
    loads = []

    def more():
        loads.append(1)
        return [ROOT[1]]
    lazy = AdoptionPolicy(anchors=[], min_remaining=DAY, more_anchors=more)
    adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", lazy)
    assert loads == [], "an idempotent inspection loaded trust anchors"
    newer_key, newer, newer_chain = make_chain(root=ROOT, days_left=80)
    adopt_held(store, [held("www", newer_key, newer, newer_chain), held("api", newer_key, newer, newer_chain)],
               "edge1", lazy)
    assert loads == [1], "the anchors are loaded once, when first needed"


def test_a_store_of_adopted_certificates_is_scanned_for_anchors_once(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {"order_url": None})
    assert store.anchors() == [] and (tmp_path / "trust").is_dir()
