"""Keys made on their hosts are new at every renewal: the host keeps its next key ready, the CA
certifies it at a renewal, the install makes it a new generation and readies a fresh one."""

import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, deploy, files, pki
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


class Host:
    """What mtls.fleet.csr and mtls.fleet.certificate_files keep on a host, for one service."""

    def __init__(self, root):
        self.service = os.path.join(root, "web")
        self.next_key = os.path.join(root, ".web.next-key.pem")

    def ready_next_key(self, key_type=pki.KeyType.ECDSA_P256):
        if files.read_file(self.next_key) is None:
            batch = files.FileBatch(keep_previous=False)
            batch.add(self.next_key, pki.key_to_pem(key_type.generate()), 0o600)
            batch.commit()

    def request(self, **extra):
        self.ready_next_key()
        in_use = files.read_file(os.path.join(self.service, "key.pem"))
        csr = pki.make_csr(pki.load_private_key(in_use, "in use"), "web").decode() if in_use else None
        next_csr = pki.make_csr(pki.load_private_key(files.read_file(self.next_key), "next"), "web").decode()
        return dict({"name": "web", "subject_alt_name": ["DNS:web.example.com"], "csr": csr, "next_csr": next_csr}, **extra)

    def served_public_key(self):
        return pki.public_bytes(pki.load_private_key(files.read_file(os.path.join(self.service, "key.pem")), "served"))

    def next_public_key(self):
        return pki.public_bytes(pki.load_private_key(files.read_file(self.next_key), "next"))


def issue(ca, request, force=False):
    outcome, = authority.issue(os.path.join(ca, "issued"), authority.parse_requests([request], {}), authority.load_issuer(ca, CAKeys()),
                               pki.Policy(), pki.utcnow(), force=force)
    return outcome


def install(ca, host, outcome):
    service = deploy.ServiceFiles("web", host.service, outcome.cert_pem, None, next_key_path=host.next_key)
    return deploy.install([service], open(os.path.join(ca, "ca-bundle.pem"), "rb").read(), pki.utcnow())[0]


def test_every_renewal_certifies_a_new_key_made_on_the_host(ca, tmp_path):
    host = Host(str(tmp_path))
    first = issue(ca, host.request())
    assert first.status == "issued" and first.key_path is None
    waiting = host.next_public_key()
    assert pki.public_bytes(first.after.public_key()) == waiting  # no key in use yet: the first certificate is for the next key
    assert install(ca, host, first)["changed"]
    assert host.served_public_key() == waiting and host.next_public_key() != waiting  # a fresh next key is ready
    assert oct(os.stat(host.next_key).st_mode & 0o777) == "0o600"

    again = issue(ca, host.request())
    assert again.status == "unchanged"
    ready = host.next_public_key()
    assert not install(ca, host, again)["changed"] and host.next_public_key() == ready  # a re-run changes nothing

    served = [host.served_public_key()]
    for _renewal in range(2):
        renewed = issue(ca, host.request(), force=True)
        assert renewed.status == "renewed" and pki.public_bytes(renewed.after.public_key()) == host.next_public_key()
        install(ca, host, renewed)
        served.append(host.served_public_key())
    assert len(set(served)) == 3  # two forced renewals: three different keys
    store = os.path.join(ca, "issued")
    assert not [f for top, _dirs, names in os.walk(store) for f in names if f == "key.pem"]  # no key ever reached the CA

    restored = deploy.restore_previous([deploy.ServiceFiles("web", host.service, b"", None, next_key_path=host.next_key)], pki.utcnow())[0]
    assert host.served_public_key() == served[1]  # the old pair is back
    assert not pki.key_mismatch(pki.load_certificates(files.read_file(os.path.join(host.service, "cert.pem")), "cert")[0],
                                pki.load_private_key(files.read_file(os.path.join(host.service, "key.pem")), "key"))
    assert restored["serial"] != pki.serial_text(renewed.after)


def test_keys_kept_when_asked_and_a_new_key_for_a_new_key_type(ca, tmp_path):
    host = Host(str(tmp_path))
    install(ca, host, issue(ca, host.request()))
    in_use = host.served_public_key()
    kept = issue(ca, host.request(rotate_key=False), force=True)
    assert kept.status == "renewed" and pki.public_bytes(kept.after.public_key()) == in_use
    install(ca, host, kept)
    assert host.served_public_key() == in_use

    os.unlink(host.next_key)
    host.ready_next_key(pki.KeyType.ECDSA_P384)  # as mtls.fleet.csr makes it when the key type changes
    changed_type = issue(ca, host.request(rotate_key=False))
    assert changed_type.reason == "key_type_changed"
    assert pki.KeyType.of(changed_type.after.public_key()) is pki.KeyType.ECDSA_P384


def test_a_certificate_for_the_next_key_not_yet_installed_is_not_issued_again(ca, tmp_path):
    host = Host(str(tmp_path))
    install(ca, host, issue(ca, host.request()))
    renewed = issue(ca, host.request(), force=True)  # the host's rollout of it then failed, or the host was lost
    pending = issue(ca, host.request())
    assert pending.status == "unchanged" and pending.after.serial_number == renewed.after.serial_number
    assert install(ca, host, pending)["renewed"]


def test_a_new_issuing_ca_re_keys_too(ca, tmp_path):
    host = Host(str(tmp_path))
    install(ca, host, issue(ca, host.request()))
    in_use, ready = host.served_public_key(), host.next_public_key()
    successor = str(tmp_path / "next-ca")  # as after a CA rollover's reissue phase: another CA signs
    authority.ensure_ca(successor, authority.CASpec(intermediate=True, common_name="mtls.fleet root CA G2"), CAKeys(), pki.utcnow())
    outcome, = authority.issue(os.path.join(ca, "issued"), authority.parse_requests([host.request()], {}),
                               authority.load_issuer(successor, CAKeys()), pki.Policy(), pki.utcnow())
    assert outcome.reason == "issuer_changed" and pki.public_bytes(outcome.after.public_key()) == ready != in_use
