"""Installing a host's certificate generation: modes, ownership, previous generation, refusals."""

import datetime
import grp
import os
import stat

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, deploy, files, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


def issue(ca, name, force=False):
    reqs = authority.parse_requests([{"name": name, "subject_alt_name": [f"DNS:{name}.example.com"]}], {})
    authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow(), force=force)
    directory = os.path.join(ca, "issued", name)
    return tuple(open(os.path.join(directory, f), "rb").read() for f in ("cert.pem", "key.pem"))


def bundle(ca):
    return open(os.path.join(ca, "ca-bundle.pem"), "rb").read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_install_sets_modes_and_group_and_is_idempotent(ca, tmp_path):
    cert, key = issue(ca, "web")
    gid = grp.getgrnam("daemon").gr_gid
    service = deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key, gid=gid, key_mode=0o640)
    first = deploy.install([service], bundle(ca), pki.utcnow())
    assert first[0]["changed"] and first[0]["previous_serial"] is None
    assert os.readlink(tmp_path / "web") == ".web.gen1"
    assert stat.S_IMODE(os.stat(tmp_path / "web").st_mode) == 0o750 and mode(tmp_path / "web" / "key.pem") == 0o640
    assert mode(tmp_path / "web" / "cert.pem") == 0o644
    assert {os.lstat(tmp_path / "web" / f).st_gid for f in ("key.pem", "cert.pem", "ca-bundle.pem")} == {gid}
    assert not deploy.install([service], bundle(ca), pki.utcnow())[0]["changed"]


def test_new_generation_keeps_the_previous_one(ca, tmp_path):
    cert, key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow())
    new_cert, new_key = issue(ca, "web", force=True)
    result = deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), new_cert, new_key)], bundle(ca), pki.utcnow())[0]
    assert result["changed"] and result["previous_serial"] and result["previous_serial"] != result["serial"]
    assert os.readlink(tmp_path / "web") == ".web.gen2"
    assert (tmp_path / ".web.gen1" / "key.pem").read_bytes() == key
    assert (tmp_path / ".web.gen1" / "cert.pem").read_bytes() == cert
    third_cert, third_key = issue(ca, "web", force=True)
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), third_cert, third_key)], bundle(ca), pki.utcnow())
    assert sorted(n for n in os.listdir(tmp_path) if "web" in n) == [".web.gen2", ".web.gen3", ".web.previous", "web"]
    assert os.readlink(tmp_path / ".web.previous") == ".web.gen2"


def test_a_mismatched_pair_is_refused_and_nothing_is_written(ca, tmp_path):
    cert, _key = issue(ca, "web")
    other_key = issue(ca, "api")[1]
    good_cert, good_key = issue(ca, "good")
    services = [deploy.ServiceFiles("good", str(tmp_path / "good"), good_cert, good_key),
                deploy.ServiceFiles("web", str(tmp_path / "web"), cert, other_key)]
    with pytest.raises(pki.PKIError, match="service 'web': the certificate does not match its private key"):
        deploy.install(services, bundle(ca), pki.utcnow())
    assert not (tmp_path / "good").exists() and not (tmp_path / "web").exists()


def test_a_certificate_from_another_ca_is_refused(ca, tmp_path):
    other = str(tmp_path / "other")
    authority.ensure_ca(other, authority.CASpec(common_name="Other"), CAKeys(), pki.utcnow())
    cert, key = issue(other, "web")
    with pytest.raises(pki.PKIError, match="does not verify against ca_bundle"):
        deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow())


def test_csr_mode_uses_the_key_on_the_host(ca, tmp_path):
    (tmp_path / "web").mkdir()
    host_key = pki.KeyType.ECDSA_P256.generate()
    (tmp_path / "web" / "key.pem").write_bytes(pki.key_to_pem(host_key))
    reqs = authority.parse_requests([{"name": "web", "subject_alt_name": ["DNS:web"], "csr": pki.make_csr(host_key, "web").decode()}], {})
    outcome = authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow())[0]
    result = deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), outcome.cert_pem)], bundle(ca), pki.utcnow())[0]
    assert result["changed"] and mode(tmp_path / "web" / "key.pem") == 0o600


def test_csr_mode_without_a_key_on_the_host_is_named(ca, tmp_path):
    cert = issue(ca, "web")[0]
    with pytest.raises(pki.PKIError, match="no private key in .*web; send private_key, or create it on the host with mtls.fleet.csr"):
        deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert)], bundle(ca), pki.utcnow())


def test_check_mode_writes_nothing(ca, tmp_path):
    cert, key = issue(ca, "web")
    result = deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow(), check_mode=True)
    assert result[0]["changed"] and not (tmp_path / "web").exists()


def test_restore_previous_puts_the_old_generation_back_and_keeps_the_new_one(ca, tmp_path):
    old_cert, old_key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), old_cert, old_key)], bundle(ca), pki.utcnow())
    new_cert, new_key = issue(ca, "web", force=True)
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), new_cert, new_key)], bundle(ca), pki.utcnow())
    result = deploy.restore_previous([deploy.ServiceFiles("web", str(tmp_path / "web"), b"")], pki.utcnow())[0]
    assert (tmp_path / "web" / "cert.pem").read_bytes() == old_cert and (tmp_path / "web" / "key.pem").read_bytes() == old_key
    assert os.readlink(tmp_path / "web") == ".web.gen1" and (tmp_path / ".web.gen2" / "cert.pem").read_bytes() == new_cert
    assert result["serial"] == pki.serial_text(pki.load_certificates(old_cert, "old")[0])
    assert mode(tmp_path / "web" / "key.pem") == 0o600


def test_restore_previous_gives_the_old_files_their_owner_and_mode_back(ca, tmp_path):
    gid = grp.getgrnam("daemon").gr_gid
    old_cert, old_key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), old_cert, old_key, gid=gid, key_mode=0o640)], bundle(ca), pki.utcnow())
    new_cert, new_key = issue(ca, "web", force=True)
    # The new generation went in for root alone: the app's group can no longer read the key.
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), new_cert, new_key)], bundle(ca), pki.utcnow())
    assert mode(tmp_path / "web" / "key.pem") == 0o600 and os.lstat(tmp_path / "web" / "key.pem").st_gid == 0
    deploy.restore_previous([deploy.ServiceFiles("web", str(tmp_path / "web"), b"")], pki.utcnow())
    assert (tmp_path / "web" / "key.pem").read_bytes() == old_key
    assert mode(tmp_path / "web" / "key.pem") == 0o640
    assert {os.stat(tmp_path / "web" / f).st_gid for f in ("key.pem", "cert.pem", "ca-bundle.pem", ".")} == {gid}


def test_restore_previous_without_a_previous_generation_changes_nothing(ca, tmp_path):
    cert, key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow())
    with pytest.raises(pki.PKIError, match="no previous generation"):
        deploy.restore_previous([deploy.ServiceFiles("web", str(tmp_path / "web"), b"")], pki.utcnow())
    assert (tmp_path / "web" / "cert.pem").read_bytes() == cert


def test_restore_previous_when_the_key_stayed_on_the_host(ca, tmp_path):
    directory = tmp_path / "web"
    directory.mkdir()
    host_key = pki.KeyType.ECDSA_P256.generate()
    (directory / "key.pem").write_bytes(pki.key_to_pem(host_key))
    certs = []
    for force in (False, True):
        reqs = authority.parse_requests([{"name": "web", "subject_alt_name": ["DNS:web"], "csr": pki.make_csr(host_key, "web").decode()}], {})
        outcome = authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow(), force=force)[0]
        deploy.install([deploy.ServiceFiles("web", str(directory), outcome.cert_pem)], bundle(ca), pki.utcnow())
        certs.append(outcome.cert_pem)
    assert not (directory / "key.pem.previous").exists()
    deploy.restore_previous([deploy.ServiceFiles("web", str(directory), b"")], pki.utcnow())
    assert (directory / "cert.pem").read_bytes() == certs[0]
    assert (directory / "key.pem").read_bytes() == pki.key_to_pem(host_key)


def test_rolling_back_a_bundle_only_change_keeps_the_certificate_that_was_served(ca, tmp_path):
    """A generation is all of a service's files: after a change of the bundle alone (a CA
    rollover's first phase), the previous generation is today's certificate with the old bundle,
    not the certificate from the renewal before."""
    directory = str(tmp_path / "web")
    old_cert, old_key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", directory, old_cert, old_key)], bundle(ca), pki.utcnow())
    cert, key = issue(ca, "web", force=True)
    deploy.install([deploy.ServiceFiles("web", directory, cert, key)], bundle(ca), pki.utcnow())
    next_root = pki.build_ca("Next root", pki.KeyType.ECDSA_P256.generate(), datetime.timedelta(days=30), pki.utcnow(), path_length=1)
    two_roots = bundle(ca) + pki.cert_to_pem(next_root)
    result = deploy.install([deploy.ServiceFiles("web", directory, cert, key)], two_roots, pki.utcnow())[0]
    assert result["changed"] and not result["renewed"] and result["replaced"] == ["ca-bundle.pem"]
    restored = deploy.restore_previous([deploy.ServiceFiles("web", directory, b"")], pki.utcnow())[0]
    assert restored["serial"] == result["serial"]
    assert (tmp_path / "web" / "cert.pem").read_bytes() == cert and (tmp_path / "web" / "key.pem").read_bytes() == key
    assert (tmp_path / "web" / "ca-bundle.pem").read_bytes() == bundle(ca)


def test_crls_are_checked_then_installed_host_wide_and_idempotently(ca, tmp_path):
    revocation.ensure_crls(ca, CAKeys(), datetime.timedelta(days=30), pki.RenewBefore.parse("20d"), pki.utcnow())
    crl = open(os.path.join(ca, revocation.CRL_FILE), "rb").read()
    path = str(tmp_path / "etc-mtls" / "crl.pem")
    assert deploy.install_crl(path, crl, check_mode=True) and not os.path.exists(path)
    assert deploy.install_crl(path, crl)
    assert open(path, "rb").read() == crl and mode(path) == 0o644
    assert not deploy.install_crl(path, crl)
    with pytest.raises(pki.PKIError, match="holds no PEM CRL"):
        deploy.install_crl(path, bundle(ca))
    assert open(path, "rb").read() == crl


def test_a_failed_write_serves_the_old_generation_and_leaves_no_temp_file(ca, tmp_path, monkeypatch):
    cert, key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow())
    new_cert, new_key = issue(ca, "web", force=True)
    real_fsync, calls = os.fsync, []

    def fsync_fails_on_the_second_file(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_on_the_second_file)
    with pytest.raises(files.FileError, match="No space left"):
        deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), new_cert, new_key)], bundle(ca), pki.utcnow())
    assert (tmp_path / "web" / "cert.pem").read_bytes() == cert and (tmp_path / "web" / "key.pem").read_bytes() == key
    assert sorted(os.listdir(tmp_path)) == [".lock", ".web.gen1", "ca", "web"]


def test_a_directory_laid_out_by_0_2_becomes_the_previous_generation(ca, tmp_path):
    cert, key = issue(ca, "web")
    legacy = tmp_path / "web"
    legacy.mkdir(mode=0o750)
    for name, content in (("cert.pem", cert), ("key.pem", key), ("ca-bundle.pem", bundle(ca))):
        (legacy / name).write_bytes(content)
    (legacy / "key.pem").chmod(0o600)
    assert not deploy.install([deploy.ServiceFiles("web", str(legacy), cert, key)], bundle(ca), pki.utcnow())[0]["changed"]
    new_cert, new_key = issue(ca, "web", force=True)
    deploy.install([deploy.ServiceFiles("web", str(legacy), new_cert, new_key)], bundle(ca), pki.utcnow())
    assert os.readlink(legacy) == ".web.gen2" and (tmp_path / ".web.gen1" / "cert.pem").read_bytes() == cert
    deploy.restore_previous([deploy.ServiceFiles("web", str(legacy), b"")], pki.utcnow())
    assert os.readlink(legacy) == ".web.gen1" and (legacy / "key.pem").read_bytes() == key


@pytest.mark.parametrize("tamper, fix", [
    (lambda path: os.chmod(path, 0o777), "chmod go-w"),
    (lambda path: os.chown(path, 65534, -1), "chown root"),
])
def test_a_parent_directory_others_can_write_to_is_refused_before_any_change(ca, tmp_path, tamper, fix):
    parent = tmp_path / "etc-mtls"
    parent.mkdir(mode=0o755)
    tamper(parent)
    cert, key = issue(ca, "web")
    with pytest.raises(pki.PKIError, match=f"service 'web': .*etc-mtls .*{fix}"):
        deploy.install([deploy.ServiceFiles("web", str(parent / "web"), cert, key)], bundle(ca), pki.utcnow())
    assert os.listdir(parent) == []


def test_a_link_that_is_not_one_of_the_generations_is_refused(ca, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), tmp_path / "web")
    cert, key = issue(ca, "web")
    with pytest.raises(pki.PKIError, match="links to .*elsewhere.*not one of its generations"):
        deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), cert, key)], bundle(ca), pki.utcnow())
    assert os.listdir(tmp_path / "elsewhere") == []


def test_the_crl_directory_is_created_but_an_existing_one_is_never_loosened(ca, tmp_path):
    revocation.ensure_crls(ca, CAKeys(), datetime.timedelta(days=30), pki.RenewBefore.parse("20d"), pki.utcnow())
    crl = open(os.path.join(ca, revocation.CRL_FILE), "rb").read()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    deploy.install_crl(str(private / "crl.pem"), crl)
    assert mode(private) == 0o700
    deploy.install_crl(str(tmp_path / "new" / "crl.pem"), crl)
    assert mode(tmp_path / "new") == 0o755


def test_restore_previous_after_a_new_key_was_made_on_the_host_puts_the_old_pair_back(ca, tmp_path):
    """mtls.fleet.csr writes a new key where the service's key is, inside the generation being
    served, and keeps the old one as key.pem.previous; the rollback serves the old pair."""
    directory = tmp_path / "web"
    directory.mkdir()
    old_key = pki.KeyType.ECDSA_P256.generate()
    (directory / "key.pem").write_bytes(pki.key_to_pem(old_key))
    certs = []
    for key in (old_key, pki.KeyType.ECDSA_P256.generate()):
        if key is not old_key:  # as mtls.fleet.csr with force does
            batch = files.FileBatch()
            batch.add(str(directory / "key.pem"), pki.key_to_pem(key), 0o600)
            batch.commit()
        reqs = authority.parse_requests([{"name": "web", "subject_alt_name": ["DNS:web"], "csr": pki.make_csr(key, "web").decode()}], {})
        outcome = authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow(), force=True)[0]
        deploy.install([deploy.ServiceFiles("web", str(directory), outcome.cert_pem)], bundle(ca), pki.utcnow())
        certs.append(outcome.cert_pem)
    deploy.restore_previous([deploy.ServiceFiles("web", str(directory), b"")], pki.utcnow())
    assert (directory / "cert.pem").read_bytes() == certs[0]
    assert (directory / "key.pem").read_bytes() == pki.key_to_pem(old_key) and mode(directory / "key.pem") == 0o600


def test_access_tightened_reaches_the_previous_generation_once_the_current_one_is_kept(ca, tmp_path):
    daemon = grp.getgrnam("daemon").gr_gid
    old_cert, old_key = issue(ca, "web")
    deploy.install([deploy.ServiceFiles("web", str(tmp_path / "web"), old_cert, old_key, gid=daemon, key_mode=0o640)], bundle(ca), pki.utcnow())
    new_cert, new_key = issue(ca, "web", force=True)
    tightened = deploy.ServiceFiles("web", str(tmp_path / "web"), new_cert, new_key, gid=0, key_mode=0o600)
    deploy.install([tightened], bundle(ca), pki.utcnow())
    previous_key = tmp_path / ".web.gen1" / "key.pem"
    assert (mode(previous_key), os.lstat(previous_key).st_gid) == (0o640, daemon)  # kept as it was, for a rollback in this rotation
    assert deploy.install([tightened], bundle(ca), pki.utcnow())[0]["changed"]  # the next run keeps the new generation
    assert (mode(previous_key), os.lstat(previous_key).st_gid) == (0o600, 0)
    assert previous_key.read_bytes() == old_key and not deploy.install([tightened], bundle(ca), pki.utcnow())[0]["changed"]
    assert deploy.install([tightened], bundle(ca), pki.utcnow(), check_mode=True)[0]["changed"] is False
