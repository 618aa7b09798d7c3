"""Watching a unit after its reload or restart: up, failed, crash-looping, replaced, or too slow."""

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils.unit_health import UnitState, watch

RUNNING = "ActiveState=active\nSubState=running\nNRestarts=0\nMainPID=100\nResult=success\n"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def watched(*outputs, seconds=2.0):
    """Watch a unit whose `systemctl show` says each of outputs in turn, the last one from then on."""
    clock, reads = Clock(), []

    def read():
        reads.append(clock.now)
        return UnitState.parse(outputs[min(len(reads), len(outputs)) - 1])
    state, found = watch(read, seconds, clock=clock, sleep=clock.sleep, interval=0.5)
    return state, found, reads


def test_a_unit_that_stays_up_passes_after_the_whole_watch():
    state, found, reads = watched(RUNNING)
    assert found is None and state.active == "active" and reads == [0.0, 0.5, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("later, expected", [
    (RUNNING.replace("active", "failed").replace("running", "failed").replace("success", "exit-code"),
     "it is failed (failed, result exit-code, 0 restarts, main PID 100)"),
    (RUNNING.replace("running", "auto-restart").replace("active", "activating"), "systemd restarted it"),
    (RUNNING.replace("NRestarts=0", "NRestarts=1").replace("MainPID=100", "MainPID=140"), "systemd restarted it"),
    (RUNNING.replace("MainPID=100", "MainPID=140"), "its main process 100 was replaced by 140"),
    (RUNNING.replace("active", "inactive").replace("running", "dead").replace("MainPID=100", "MainPID=0"), "it is inactive (dead"),
])
def test_a_unit_that_goes_down_fails_as_soon_as_it_shows(later, expected):
    state, found, reads = watched(RUNNING, RUNNING, later)
    assert found.startswith(expected) and reads == [0.0, 0.5, 1.0]


def test_a_unit_still_starting_may_come_up_but_must_by_the_end():
    starting = RUNNING.replace("active", "activating").replace("running", "start")
    assert watched(starting, RUNNING)[1] is None
    state, found, _reads = watched(starting)
    assert found.startswith("it is activating (start")


def test_a_unit_already_down_when_the_watch_starts_fails_at_once():
    state, found, reads = watched(RUNNING.replace("active", "failed"))
    assert found.startswith("it is failed") and reads == [0.0]


def test_systemctl_show_output_is_read_whatever_its_order():
    state = UnitState.parse("Result=success\nMainPID=7\nNRestarts=[not set]\nSubState=running\nActiveState=active\n")
    assert (state.active, state.sub, state.restarts, state.main_pid) == ("active", "running", 0, 7)
