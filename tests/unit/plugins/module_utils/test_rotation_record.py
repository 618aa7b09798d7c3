"""The rotation record: each host's last run, outcome and last success; the report's judgement of it."""

import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import report, rotation_record
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileError
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW


def test_each_run_updates_its_hosts_and_a_failure_keeps_the_last_success(tmp_path):
    path = str(tmp_path)
    assert rotation_record.read(path) == {}
    rotation_record.record(path, {"web-1": "rotated", "web-2": "kept (new CRLs)", "web-3": "rolled back"}, NOW)
    later = NOW + DAY
    hosts = rotation_record.record(path, {"web-1": "rolled back, NOT SERVING", "web-2": "kept"}, later)
    stamp, stamp_later = f"{NOW:%Y-%m-%dT%H:%M:%SZ}", f"{later:%Y-%m-%dT%H:%M:%SZ}"
    assert hosts == {
        "web-1": {"last_run": stamp_later, "last_outcome": "rolled back, NOT SERVING", "last_success": stamp},
        "web-2": {"last_run": stamp_later, "last_outcome": "kept", "last_success": stamp_later},
        "web-3": {"last_run": stamp, "last_outcome": "rolled back", "last_success": None},
    }
    assert rotation_record.read(path) == hosts
    assert oct(os.stat(tmp_path / rotation_record.RECORD_FILE).st_mode & 0o777) == "0o644"
    assert rotation_record.timestamp(stamp) == int(NOW.replace(microsecond=0).timestamp())


def test_the_metrics_read_each_time_in_seconds_and_whether_the_last_run_succeeded(tmp_path):
    stamp = f"{NOW:%Y-%m-%dT%H:%M:%SZ}"
    seconds = int(NOW.replace(microsecond=0).timestamp())
    assert rotation_record.with_timestamps({"last_run": stamp, "last_outcome": "rolled back", "last_success": None}) == {
        "last_run": stamp, "last_outcome": "rolled back", "last_success": None,
        "last_run_timestamp": seconds, "last_success_timestamp": None, "last_run_succeeded": False}
    assert rotation_record.with_timestamps({"last_run": stamp, "last_outcome": "kept (new CRLs)", "last_success": stamp})["last_run_succeeded"]


def test_check_mode_writes_nothing(tmp_path):
    assert rotation_record.record(str(tmp_path), {"web-1": "rotated"}, NOW, check_mode=True)["web-1"]["last_outcome"] == "rotated"
    assert not (tmp_path / rotation_record.RECORD_FILE).exists()


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / rotation_record.RECORD_FILE).write_text("[]")
    with pytest.raises(FileError, match="rotations.json is not a rotation record; move it away"):
        rotation_record.read(str(tmp_path))


OUTCOMES = [("rotated", True), ("kept", True), ("kept (web replaced)", True), ("kept (new CRLs)", True), ("rolled back", False),
            ("rolled back, NOT SERVING", False), ("lost during its rollout", False), ("not started (web-1 rolled back)", False),
            ("not reached", False)]


@pytest.mark.parametrize("outcome, success", OUTCOMES)
def test_what_counts_as_a_successful_rotation(outcome, success):
    assert rotation_record.succeeded(outcome) is success


def test_the_report_flags_hosts_without_a_recent_success_only_when_asked():
    now = NOW + 3 * DAY
    record = {"web-1": {"last_run": f"{NOW + 2 * DAY:%Y-%m-%dT%H:%M:%SZ}", "last_outcome": "kept", "last_success": f"{NOW + 2 * DAY:%Y-%m-%dT%H:%M:%SZ}"},
              "web-2": {"last_run": f"{NOW + 2 * DAY:%Y-%m-%dT%H:%M:%SZ}", "last_outcome": "rolled back", "last_success": f"{NOW:%Y-%m-%dT%H:%M:%SZ}"}}
    judged = report.rotations(["web-1", "web-2", "web-3"], record, 2, now)
    assert [(row["host"], row["days_since_success"]) for row in judged["rows"]] == [("web-1", 1.0), ("web-2", 3.0), ("web-3", None)]
    assert judged["alert_lines"] == [
        f"web-2/(rotation): last successful rotation {NOW:%Y-%m-%dT%H:%M:%SZ} (last run {NOW + 2 * DAY:%Y-%m-%dT%H:%M:%SZ}: rolled back)",
        "web-3/(rotation): last successful rotation never (last run never: -)"]
    assert judged["table"][0].split() == ["HOST", "LAST", "ROTATION", "RUN", "OUTCOME", "LAST", "SUCCESS", "DAYS", "SINCE"]
    assert judged["table"][-1] == "3 hosts, 2 without a successful rotation for too long (older than 2 days)"
    unjudged = report.rotations(["web-3"], record, 0, now)
    assert unjudged["alerts"] == [] and unjudged["table"][-1].endswith("(not judged: set mtls_report_rotation_max_age_days)")


def _service(name="web", changed=True, renewed=True, replaced=("cert.pem",)):
    return {"name": name, "serial": "0A" * 10, "changed": changed, "renewed": renewed, "replaced": list(replaced)}


@pytest.mark.parametrize("result, outcome", [
    ({"services": [_service()], "outcome": "rotated"}, "rotated"),
    ({"services": [_service(renewed=False, replaced=["ca-bundle.pem"])], "outcome": "changed"}, "kept (ca-bundle.pem replaced)"),
    ({"services": [_service(changed=False, renewed=False, replaced=[])], "crl_changed": True}, "kept (new CRLs)"),
    ({"services": [_service(changed=False, renewed=False, replaced=[])]}, "kept"),
    ({"services": [_service(changed=False, renewed=False, replaced=[])], "stale": [{"served": "1B" * 10}]},
     "rotated (converged: it served 1B1B1B1B1B1B1B1B)"),
])
def test_a_transaction_that_passed_is_rotated_or_kept(result, outcome):
    found = rotation_record.transaction_outcome(result, "web-1", "stop", False)
    assert found["outcome"] == outcome and found["failure"] == "" and rotation_record.succeeded(found["outcome"])


def test_a_rolled_back_transaction_fails_the_host_with_its_cause():
    result = {"failed": True, "outcome": "rolled back", "cause": "the app on web-1 refuses the new certificate",
              "restored": [{"name": "web", "serial": "0A"}], "services": [_service()]}
    found = rotation_record.transaction_outcome(result, "web-1", "stop_service", False)
    assert found["outcome"] == "rolled back"
    assert found["failure"] == ("host web-1: rotation failed (the app on web-1 refuses the new certificate); the previous generation is "
                                "back and served again; later batches of its services were not started. Fix the cause and run the rotation again.")
    refused = rotation_record.transaction_outcome({"failed": True, "msg": "ca_bundle is required", "outcome": "refused"}, "web-1", "stop", False)
    assert refused["outcome"] == "rolled back" and "nothing was installed" in refused["failure"]
    not_serving = rotation_record.transaction_outcome(dict(result, outcome="rolled back, NOT SERVING"), "web-1", "stop", False)
    assert not_serving["outcome"] == "rolled back, NOT SERVING" and "its endpoints may not answer" in not_serving["failure"]


def test_a_host_lost_during_its_transaction_is_reported_lost():
    found = rotation_record.transaction_outcome({"unreachable": True, "msg": "ssh: connect to host"}, "web-1", "stop", False)
    assert found["outcome"] == "lost during its rollout" and "host web-1: lost during its rotation (ssh: connect to host)" in found["failure"]
    assert rotation_record.transaction_outcome({}, "web-1", "stop", True)["outcome"] == "planned (check mode)"
