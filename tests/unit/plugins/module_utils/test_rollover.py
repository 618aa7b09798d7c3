"""CA rollover phases on the CA host: what each changes, the record, resuming, refusing (fixed clock)."""

import json
import os
import stat

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki, revocation, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW

SPEC = authority.CASpec(intermediate=True)
ROOT, INTERMEDIATE = rollover.Kind.ROOT, rollover.Kind.INTERMEDIATE


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, SPEC, CAKeys(), NOW)
    return path


def bundle_names(ca):
    return [pki.common_name_of(c) for c in pki.load_certificates(open(os.path.join(ca, authority.BUNDLE), "rb").read(), "bundle")]


def issuer_name(ca):
    return pki.common_name_of(authority.load_issuer(ca, CAKeys()).cert)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def run(ca, phase, kind=None, now=NOW):
    step = rollover.begin(ca, phase, kind, SPEC, CAKeys(), now)
    rollover.verified(ca, phase, CAKeys(), now)
    return step


def test_root_rollover_phase_by_phase(ca):
    old_root = open(os.path.join(ca, authority.ROOT_CERT), "rb").read()

    step = rollover.begin(ca, "trust", ROOT, SPEC, CAKeys(), NOW)
    assert step.changed and any("create root CA 'mtls.fleet root CA G2'" in a for a in step.actions)
    assert bundle_names(ca) == ["mtls.fleet root CA", "mtls.fleet root CA G2"]
    assert issuer_name(ca) == "mtls.fleet intermediate CA"  # the old CA still issues
    assert mode(os.path.join(ca, authority.NEXT, authority.ROOT_KEY)) == 0o600
    for directory in (authority.ROLLOVER, authority.NEXT, rollover.PROBES):
        assert mode(os.path.join(ca, directory)) == 0o700
    assert not rollover.begin(ca, "trust", ROOT, SPEC, CAKeys(), NOW).changed  # begun again: nothing new
    rollover.verified(ca, "trust", CAKeys(), NOW)

    run(ca, "reissue")
    assert issuer_name(ca) == "mtls.fleet intermediate CA G2"
    assert open(os.path.join(ca, authority.PREVIOUS, authority.ROOT_CERT), "rb").read() == old_root
    assert not os.path.exists(os.path.join(ca, authority.NEXT))
    assert bundle_names(ca) == ["mtls.fleet root CA", "mtls.fleet root CA G2"]

    rollover.begin(ca, "retire", None, SPEC, CAKeys(), NOW)
    assert bundle_names(ca) == ["mtls.fleet root CA G2"]
    finish = rollover.verified(ca, "retire", CAKeys(), NOW)
    assert any("destroy the old CA's keys" in a for a in finish.actions)
    assert not os.path.exists(os.path.join(ca, authority.PREVIOUS))
    assert not os.path.exists(os.path.join(ca, rollover.PROBES))
    archived = os.listdir(os.path.join(ca, rollover.RETIRED))
    assert len(archived) == 1 and archived[0].startswith("G1-")
    assert sorted(os.listdir(os.path.join(ca, rollover.RETIRED, archived[0]))) == [authority.INTERMEDIATE_CERT, authority.ROOT_CERT]
    state = rollover.status(ca, NOW)
    assert not state["in_progress"] and state["state"]["verified"] == list(rollover.PHASES)
    assert authority.ensure_ca(ca, SPEC, CAKeys(), NOW).warnings == []  # 'G2' is not drift


def test_every_leaf_of_the_old_ca_is_due_after_reissue_begins(ca):
    requests = authority.parse_requests([{"name": "web", "subject_alt_name": ["DNS:web"]}], {})
    store = os.path.join(ca, authority.ISSUED)
    authority.issue(store, requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW)
    run(ca, "trust", ROOT)
    assert authority.issue(store, requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW)[0].status == "unchanged"
    rollover.begin(ca, "reissue", None, SPEC, CAKeys(), NOW)
    outcome = authority.issue(store, requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW)[0]
    assert (outcome.status, outcome.reason) == ("renewed", "issuer_changed")


def test_intermediate_rollover_keeps_the_bundle_and_revokes_the_old_intermediate(ca):
    bundle = open(os.path.join(ca, authority.BUNDLE), "rb").read()
    old = authority.load_issuer(ca, CAKeys()).cert
    run(ca, "trust", INTERMEDIATE)
    run(ca, "reissue")
    assert issuer_name(ca) == "mtls.fleet intermediate CA G2"
    assert pki.signed_by(authority.load_issuer(ca, CAKeys()).cert, authority.load_issuer(ca, CAKeys()).roots[0])
    rollover.begin(ca, "retire", None, SPEC, CAKeys(), NOW)
    assert open(os.path.join(ca, authority.BUNDLE), "rb").read() == bundle
    assert old.serial_number in revocation.revoked_serials(ca)
    revocation.ensure_crls(ca, CAKeys(), 30 * DAY, pki.RenewBefore.parse("20d"), NOW)
    root_crl = pki.load_crls(open(os.path.join(ca, revocation.CRL_FILE), "rb").read(), "crl")[0]
    assert pki.crl_serials(root_crl) == {old.serial_number}
    rollover.verified(ca, "retire", CAKeys(), NOW)
    assert not rollover.status(ca, NOW)["in_progress"]


def test_generations_share_one_counter_so_no_two_cas_are_named_alike(ca):
    for phase in rollover.PHASES:
        run(ca, phase, ROOT)  # root and intermediate G2
    for phase in rollover.PHASES:
        run(ca, phase, INTERMEDIATE)  # intermediate G3
    step = rollover.begin(ca, "trust", ROOT, SPEC, CAKeys(), NOW + DAY)
    assert any("'mtls.fleet root CA G4'" in a for a in step.actions)
    assert any("'mtls.fleet intermediate CA G4'" in a for a in step.actions)
    assert sorted(name.split("-")[0] for name in os.listdir(os.path.join(ca, rollover.RETIRED))) == ["G1", "G2"]


def test_reissue_finishes_a_swap_that_stopped_halfway(ca):
    run(ca, "trust", ROOT)
    new_root = open(os.path.join(ca, authority.NEXT, authority.ROOT_CERT), "rb").read()
    # A crash after previous/ was written but before the new CA was moved into place:
    os.makedirs(os.path.join(ca, authority.PREVIOUS), mode=0o700)
    for name in (authority.ROOT_CERT, authority.ROOT_KEY, authority.INTERMEDIATE_CERT, authority.INTERMEDIATE_KEY):
        with open(os.path.join(ca, authority.PREVIOUS, name), "wb") as handle:
            handle.write(open(os.path.join(ca, name), "rb").read())
    rollover.begin(ca, "reissue", None, SPEC, CAKeys(), NOW)
    assert open(os.path.join(ca, authority.ROOT_CERT), "rb").read() == new_root
    assert issuer_name(ca) == "mtls.fleet intermediate CA G2"
    assert not rollover.begin(ca, "reissue", None, SPEC, CAKeys(), NOW).changed  # and again: done


@pytest.mark.parametrize(
    "setup, call, message",
    [
        ([], ("reissue", ROOT), "next phase is trust"),
        ([], ("trust", None), "no CA rollover is in progress"),
        ([("trust", ROOT)], ("retire", None), "next phase is reissue"),
        ([("trust", ROOT)], ("reissue", INTERMEDIATE), "a root rollover .* is in progress"),
    ],
)
def test_out_of_order_phases_are_refused_and_say_what_is_next(ca, setup, call, message):
    for phase, kind in setup:
        run(ca, phase, kind)
    with pytest.raises(pki.PKIError, match=message):
        rollover.begin(ca, call[0], call[1], SPEC, CAKeys(), NOW)


def test_verifying_a_phase_that_was_not_begun_is_refused(ca):
    rollover.begin(ca, "trust", ROOT, SPEC, CAKeys(), NOW)
    with pytest.raises(pki.PKIError, match="cannot be verified before trust"):
        rollover.verified(ca, "reissue", CAKeys(), NOW)


def test_intermediate_rollover_needs_an_intermediate(tmp_path):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=False), CAKeys(), NOW)
    with pytest.raises(pki.PKIError, match="has no intermediate"):
        rollover.begin(ca, "trust", INTERMEDIATE, SPEC, CAKeys(), NOW)


def test_check_mode_reports_the_changes_and_writes_nothing(ca):
    before = sorted(os.listdir(ca))
    step = rollover.begin(ca, "trust", ROOT, SPEC, CAKeys(), NOW, check_mode=True)
    assert step.changed and any("create root CA" in a for a in step.actions)
    assert sorted(os.listdir(ca)) == before


def test_the_record_is_readable_json_and_keys_stay_private(ca):
    run(ca, "trust", ROOT)
    record = json.load(open(os.path.join(ca, rollover.STATE_FILE)))
    assert record["kind"] == "root" and record["generation"] == 2 and record["verified"] == ["trust"]
    keys = [os.path.join(root, f) for root, _dirs, files in os.walk(ca) for f in files if f.endswith("key.pem")]
    assert keys and all(mode(k) == 0o600 for k in keys)


@pytest.mark.parametrize("kind, left", [(ROOT, ["mtls.fleet root CA G2", "mtls.fleet intermediate CA G2"]),
                                        (INTERMEDIATE, ["mtls.fleet root CA", "mtls.fleet intermediate CA G2"])])
def test_a_finished_rollover_leaves_the_crls_its_retire_phase_published(ca, kind, left):
    """Each phase's rotation publishes the CRLs; finishing (the old CA destroyed) must not change them again."""
    def publish():
        return revocation.ensure_crls(ca, CAKeys(), 30 * DAY, pki.RenewBefore.parse("20d"), NOW)
    publish()
    for phase in rollover.PHASES:
        rollover.begin(ca, phase, kind if phase == "trust" else None, SPEC, CAKeys(), NOW)
        published = publish()
        rollover.verified(ca, phase, CAKeys(), NOW)
    assert [crl["issuer"].split("=", 1)[1] for crl in published.crls] == left  # the retired CA's CRLs are gone already
    assert not rollover.status(ca, NOW)["in_progress"]
    after = publish()
    assert not after.changed and after.reason is None
