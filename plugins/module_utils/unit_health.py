# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a systemd unit stays up after a reload or restart. No Ansible imports.

An app that declares no endpoints cannot be probed, but its unit can be watched: an app that
cannot read its new files exits (the unit fails) or is restarted by systemd (auto-restart, more
restarts, another main process) within moments of its reload or restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PROPERTIES = ("ActiveState", "SubState", "NRestarts", "MainPID", "Result")
_STILL_STARTING = ("activating", "reloading")


@dataclass(frozen=True)
class UnitState:
    active: str
    sub: str
    restarts: int
    main_pid: int
    result: str

    @classmethod
    def parse(cls, text: str) -> UnitState:
        """From `systemctl show --property=<PROPERTIES>` output (Key=Value lines)."""
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return cls(active=values.get("ActiveState", ""), sub=values.get("SubState", ""), restarts=_number(values.get("NRestarts")),
                   main_pid=_number(values.get("MainPID")), result=values.get("Result", ""))

    def describe(self) -> str:
        return f"{self.active} ({self.sub}, result {self.result or 'unknown'}, {self.restarts} restarts, main PID {self.main_pid})"


def _number(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def problem(first: UnitState, now: UnitState, final: bool) -> str | None:
    """What says the unit did not stay up since first, or None. final: the watch is over, so a
    unit still starting or reloading has not come up in time."""
    if now.sub == "auto-restart" or now.restarts > first.restarts:
        return f"systemd restarted it (now {now.describe()})"
    if first.main_pid and now.main_pid and now.main_pid != first.main_pid:
        return f"its main process {first.main_pid} was replaced by {now.main_pid} (now {now.describe()})"
    if now.active == "active" or (now.active in _STILL_STARTING and not final):
        return None
    return f"it is {now.describe()}"


def watch(read, seconds: float, clock=time.monotonic, sleep=time.sleep, interval=0.25) -> tuple:
    """Read the unit's state until seconds have passed or it shows a problem.
    read() -> UnitState. Returns (the last state read, the problem or None)."""
    first = state = read()
    deadline = clock() + seconds
    while True:
        final = clock() >= deadline
        found = problem(first, state, final)
        if found or final:
            return state, found
        sleep(interval)
        state = read()
