import datetime

from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.module_utils._acme.adoption import adopt_held
from ansible_collections.certops.acme.plugins.module_utils._acme.store import CertificateStore

from cert_material import make_chain


def held(name, key_pem, leaf, chain):
    def pem(c):
        return c.public_bytes(serialization.Encoding.PEM).decode()
    return {"name": name, "path": f"/etc/certs/{name}",
            "files": {"cert.pem": pem(leaf), "chain.pem": "".join(pem(c) for c in chain),
                      "privkey.pem": key_pem.decode()}}


DAY = datetime.timedelta(days=1)


def test_an_empty_store_adopts_a_valid_held_certificate(tmp_path):
    store = CertificateStore(str(tmp_path))
    key_pem, leaf, chain = make_chain()
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", DAY)
    assert summary[0]["adopted"] is True
    assert "privkey.pem" not in str(summary) and "PRIVATE" not in str(summary)
    stored = store.load("www")
    assert stored.key_pem == key_pem and stored.meta["source"] == "adopted from edge1"


def test_a_key_that_does_not_match_is_not_adopted(tmp_path):
    store = CertificateStore(str(tmp_path))
    _ignored, leaf, chain = make_chain()
    other_key, _ignored, _ignored = make_chain()
    summary = adopt_held(store, [held("www", other_key, leaf, chain)], "edge1", DAY)
    assert summary[0]["adopted"] is False and "does not match" in summary[0]["problem"]
    assert store.load("www") is None


def test_an_almost_expired_certificate_is_not_adopted(tmp_path):
    store = CertificateStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(days_left=0.5)
    summary = adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", DAY)
    assert "too soon" in summary[0]["problem"] and store.load("www") is None


def test_a_newer_store_certificate_is_not_replaced_by_an_older_held_one(tmp_path):
    store = CertificateStore(str(tmp_path))
    new_key, new_leaf, new_chain = make_chain(days_left=80)
    store.save("www", new_key, new_leaf, new_chain, {})
    old_key, old_leaf, old_chain = make_chain(days_left=20)
    summary = adopt_held(store, [held("www", old_key, old_leaf, old_chain)], "edge1", DAY)
    assert summary[0]["adopted"] is False
    assert store.load("www").key_pem == new_key


def test_check_mode_adopts_nothing(tmp_path):
    store = CertificateStore(str(tmp_path))
    key_pem, leaf, chain = make_chain()
    adopt_held(store, [held("www", key_pem, leaf, chain)], "edge1", DAY, adopt=False)
    assert store.load("www") is None
