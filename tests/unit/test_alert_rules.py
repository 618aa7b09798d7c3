"""The Prometheus alert rules shipped in docs/examples/prometheus: valid, firing when and only when
their promtool tests say (tests/prometheus), and written for the metrics mtls.fleet.report writes."""

import os
import re
import shutil
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "docs", "examples", "prometheus", "mtls-fleet.rules.yml")
TESTS = os.path.join(ROOT, "tests", "prometheus", "mtls-fleet.rules.test.yml")
CA_TESTS = os.path.join(ROOT, "tests", "prometheus", "mtls-fleet.ca.rules.test.yml")
DRIFT_TESTS = os.path.join(ROOT, "tests", "prometheus", "mtls-fleet.drift.rules.test.yml")
# scripts/install.sh unpacks Debian's promtool here (the package would also start a Prometheus server).
PROMTOOL = os.path.join(ROOT, ".build", "promtool", "usr", "bin", "promtool")


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)


def test_the_rules_are_valid():
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0 and "SUCCESS: 11 rules found" in done.stdout, done.stdout + done.stderr


def test_each_rule_fires_when_its_tests_say_and_not_before():
    done = promtool("test", "rules", TESTS, CA_TESTS, DRIFT_TESTS)
    assert done.returncode == 0 and done.stdout.count("SUCCESS") == 3, done.stdout + done.stderr


def test_a_rule_that_fires_too_late_fails_its_tests(tmp_path):
    rules_dir = tmp_path / "docs" / "examples" / "prometheus"
    rules_dir.mkdir(parents=True)
    (rules_dir / "mtls-fleet.rules.yml").write_text(open(RULES, encoding="utf-8").read().replace("< 14 * 86400", "< 10 * 86400"))
    (tmp_path / "tests" / "prometheus").mkdir(parents=True)
    shutil.copy(TESTS, tmp_path / "tests" / "prometheus")
    done = promtool("test", "rules", str(tmp_path / "tests" / "prometheus" / "mtls-fleet.rules.test.yml"))
    assert done.returncode != 0 and "alertname: MtlsCertificateExpiringSoon" in done.stdout + done.stderr, done.stdout + done.stderr


def test_the_rules_read_only_metrics_the_report_writes():
    written = set(re.findall(r"^\s*(mtls_\w+)(?:\{| )", open(os.path.join(ROOT, "playbooks", "report.yml"), encoding="utf-8").read(), re.M))
    rules = [rule for group in yaml.safe_load(open(RULES, encoding="utf-8"))["groups"] for rule in group["rules"]]
    read = {name for rule in rules for name in re.findall(r"\b(mtls_\w+|node_\w+)", re.sub(r'"[^"]*"', "", rule["expr"]))}
    assert read - written == {"node_textfile_mtime_seconds"}, "a rule reads a metric nobody writes"
    assert {"mtls_certificate_expiry_timestamp_seconds", "mtls_crl_next_update_timestamp_seconds",
            "mtls_rotation_last_success_timestamp_seconds", "mtls_ca_expiry_timestamp_seconds", "mtls_rotation_last_run_succeeded",
            "mtls_drift", "mtls_ledger_intact"} <= read
