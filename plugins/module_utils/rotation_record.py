# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When each host last rotated, and how it ended: rotations.json in the CA directory. No Ansible imports.

A scheduled rotation can stop working without anyone noticing (its timer disabled, a controller
that cannot reach the fleet, a host rolled back every night): its unit still ends successfully.
The rotation records every host's outcome here, and the report says when each host's last
successful rotation was.
"""

from __future__ import annotations

import datetime
import json
import os

from .files import FileBatch, FileError, read_file

RECORD_FILE = "rotations.json"
MODE = 0o644
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def outcome_of(host_facts: dict) -> str:
    """A host's outcome in this run, from the rotate playbook's facts."""
    return host_facts.get("mtls_rotate_outcome") or "not reached"


def succeeded(outcome: str) -> bool:
    """A rotation outcome (the summary's last column) that left the host serving what it should."""
    return str(outcome).startswith(("rotated", "kept"))


def transaction_outcome(result: dict, host: str, on_failure: str, check_mode: bool) -> dict:
    """What a rotation says about a host from its host_transaction result: its outcome (the
    summary's last column), the generation it serves, and the failure that fails the run (or None)."""
    serving = result.get("services") or []
    if check_mode:
        return {"outcome": "planned (check mode)", "serving": serving, "failure": ""}
    if result.get("unreachable"):
        return {"outcome": "lost during its rollout", "serving": [], "failure": (
            f"host {host}: lost during its rotation ({result.get('msg', 'unreachable')}); its transaction goes on without the "
            "controller and ends with one whole generation served, old or new. Once it is back, run the rotation again: the plan "
            "shows what it holds and the rollout converges.")}
    if result.get("outcome") == "not serving":
        return {"outcome": "not serving", "serving": serving, "failure": (
            f"host {host}: an endpoint does not serve the certificate installed ({result.get('cause')}); nothing was changed on it. "
            "Look at the host now: nginx or the app may be down.")}
    if result.get("failed") or str(result.get("outcome", "")).startswith("rolled back"):
        outcome = result.get("outcome") if str(result.get("outcome", "")).startswith("rolled back") else "rolled back"
        later = "later batches of its services were not started" if on_failure == "stop_service" else "later batches were not started"
        if outcome == "rolled back, NOT SERVING":
            failure = (f"host {host}: rotation failed ({result.get('cause') or result.get('msg')}); {later}. Look at the host now: "
                       "its endpoints may not answer.")
        else:
            restored = "the previous generation is back and served again" if result.get("restored") else "nothing was installed"
            failure = f"host {host}: rotation failed ({result.get('cause') or result.get('msg')}); {restored}; {later}. " \
                      "Fix the cause and run the rotation again."
        return {"outcome": outcome, "serving": serving, "failure": failure}
    renewed = [s["name"] for s in serving if s.get("changed") and s.get("renewed")]
    replaced = sorted({name for s in serving if s.get("changed") for name in s.get("replaced") or []})
    if renewed:
        outcome = "rotated"
    elif result.get("stale"):
        outcome = "rotated (converged: it served %s)" % ", ".join(sorted({(s["served"] or "nothing")[:16] for s in result["stale"]}))
    elif replaced:
        outcome = "kept (%s replaced)" % ", ".join(replaced)
    elif result.get("crl_changed"):
        outcome = "kept (new CRLs)"
    else:
        outcome = "kept"
    return {"outcome": outcome, "serving": serving, "failure": ""}


def read(path: str) -> dict:
    """{host: {last_run, last_outcome, last_success (or None)}}; empty before the first rotation."""
    record_path = os.path.join(path, RECORD_FILE)
    text = read_file(record_path)
    if text is None:
        return {}
    try:
        hosts = json.loads(text)["hosts"]
    except (ValueError, KeyError, TypeError):
        raise FileError(f"{record_path} is not a rotation record; move it away (the next rotation writes a new one)") from None
    return hosts


def record(path: str, outcomes: dict, now: datetime.datetime, check_mode=False) -> dict:
    """Add one run's outcomes ({host: outcome}) to the record; returns the record."""
    hosts = read(path)
    stamp = f"{now:{_TIME}}"
    for host, outcome in sorted(outcomes.items()):
        entry = dict(hosts.get(host) or {"last_success": None}, last_run=stamp, last_outcome=str(outcome))
        if succeeded(outcome):
            entry["last_success"] = stamp
        hosts[host] = entry
    if not check_mode:
        batch = FileBatch(keep_previous=False)
        batch.add(os.path.join(path, RECORD_FILE), (json.dumps({"hosts": hosts}, indent=1, sort_keys=True) + "\n").encode(), MODE)
        batch.commit()
    return hosts


def with_timestamps(entry: dict) -> dict:
    """A host's record as the report's metrics read it: the times also in seconds since the epoch,
    and whether its last run succeeded."""
    return dict(entry, last_success_timestamp=timestamp(entry.get("last_success")), last_run_timestamp=timestamp(entry.get("last_run")),
                last_run_succeeded=succeeded(entry.get("last_outcome", "")))


def days_since(stamp: str | None, now: datetime.datetime) -> float | None:
    if not stamp:
        return None
    then = datetime.datetime.strptime(stamp, _TIME).replace(tzinfo=datetime.timezone.utc)
    return round((now - then).total_seconds() / 86400, 2)


def timestamp(stamp: str | None) -> int | None:
    if not stamp:
        return None
    return int(datetime.datetime.strptime(stamp, _TIME).replace(tzinfo=datetime.timezone.utc).timestamp())
