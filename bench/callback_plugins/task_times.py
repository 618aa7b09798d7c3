# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a playbook's time goes, task by task: wall seconds and controller CPU seconds.

    ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins ANSIBLE_CALLBACKS_ENABLED=task_times \
    TASK_TIMES=times.txt ansible-playbook ...

One line per task (and play) in run order: its wall seconds, the controller's CPU seconds (the
playbook process and its finished workers) until the next task starts, and its name; the total
last. A worker's CPU counts once it has been reaped, so a little of it can land on the next line.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_times
type: aggregate
short_description: Wall and controller CPU seconds per task, written to a file
description:
  - For benchmarks (bench/ of mtls.fleet); not shipped in the collection.
options: {}
"""

import os
import resource
import time

from ansible.plugins.callback import CallbackBase


def _cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._rows, self._current = [], None

    def _next(self, name):
        wall, cpu = time.perf_counter(), _cpu()
        if self._current:
            label, started, cpu_started = self._current
            self._rows.append((wall - started, cpu - cpu_started, label))
        self._current = (name, wall, cpu) if name else None

    def v2_playbook_on_play_start(self, play):
        self._next("PLAY " + play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._next(task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._next(None)
        with open(os.environ.get("TASK_TIMES", "task_times.txt"), "w", encoding="utf-8") as handle:
            for wall, cpu, label in self._rows:
                handle.write(f"{wall:7.2f} {cpu:7.2f}  {label}\n")
            handle.write(f"{sum(r[0] for r in self._rows):7.2f} {sum(r[1] for r in self._rows):7.2f}  TOTAL\n")
