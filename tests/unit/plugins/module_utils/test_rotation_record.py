"""The rotation record: each host's last run, outcome and last success; the report's judgement of it."""

import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import pki, report, rotation_record
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


def test_check_mode_writes_nothing(tmp_path):
    assert rotation_record.record(str(tmp_path), {"web-1": "rotated"}, NOW, check_mode=True)["web-1"]["last_outcome"] == "rotated"
    assert not (tmp_path / rotation_record.RECORD_FILE).exists()


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / rotation_record.RECORD_FILE).write_text("[]")
    with pytest.raises(pki.PKIError, match="rotations.json is not a rotation record; move it away"):
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
