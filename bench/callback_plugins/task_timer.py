# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark aid: wall time of every task of a run, slowest first, at the end of the run."""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Print each task's wall time, slowest first (benchmarks only)
version_added: 0.1.0
description:
  - Enabled by bench/site_scale.py with ANSIBLE_CALLBACKS_ENABLED=task_timer.
author: mtls.fleet developers (@mtls-fleet)
"""

import time

from ansible.plugins.callback import CallbackBase


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
            name, start = self._current
            self._times.append((time.monotonic() - start, name))
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = (task.get_name(), time.monotonic())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
        self._display.display("TASK TIMES (s)")
        for seconds, name in sorted(self._times, reverse=True)[:25]:
            self._display.display(f"{seconds:7.2f}  {name}")
        self._display.display(f"{sum(seconds for seconds, name in self._times):7.2f}  all tasks")
