# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark aid: the wall time and controller CPU of every task of a run, slowest first, at the
end of the run; with TASK_TIMER_FILE, every task in run order into that file too.

    ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins ANSIBLE_CALLBACKS_ENABLED=task_timer \
    TASK_TIMER_FILE=times.txt ansible-playbook ...

Controller CPU is that of the playbook process and its finished workers until the next task
starts: a worker's CPU counts once it has been reaped, so a little of it can land on the next task.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Print each task's wall time and controller CPU, slowest first (benchmarks only)
version_added: 0.1.0
description:
  - Enabled with ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins and ANSIBLE_CALLBACKS_ENABLED=task_timer.
author: mtls.fleet developers (@mtls-fleet)
"""

import os
import resource
import time

from ansible.plugins.callback import CallbackBase


def _cpu():
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current = None
        self._times = []

    def _close(self):
        if self._current:
            name, start, cpu = self._current
            self._times.append((time.monotonic() - start, _cpu() - cpu, name))
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = (task.get_name(), time.monotonic(), _cpu())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
        lines = [f"{seconds:7.2f} {cpu:7.2f}  {name}" for seconds, cpu, name in self._times]
        total = f"{sum(t[0] for t in self._times):7.2f} {sum(t[1] for t in self._times):7.2f}  all tasks"
        if os.environ.get("TASK_TIMER_FILE"):
            with open(os.environ["TASK_TIMER_FILE"], "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines + [total]) + "\n")
        self._display.display("TASK TIMES (s): wall, controller CPU")
        for line in sorted(lines, reverse=True)[:25]:
            self._display.display(line)
        self._display.display(total)
