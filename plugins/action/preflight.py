# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One role's checks of one host in one task: every problem is found, then all are reported."""

from __future__ import annotations

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role_path", "problems", "host_requirements", "executable"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        host = task_vars.get("inventory_hostname")
        problems = ["host %s: %s" % (host, message) for message in self._argument_errors(task_vars)]
        problems += list(self._task.args.get("problems") or [])
        try:
            problems += self._host_problems(host, task_vars)
        except AnsibleConnectionFailure as error:
            if not self._task.ignore_unreachable:
                raise
            # Not bad input: the plan reports a host it cannot reach, and the others go on.
            result["host_reached"] = False
            result["msg"] = "host %s: not reached (%s)" % (host, error)
        else:
            result["host_reached"] = True
        result["changed"] = False
        result["problems"] = problems
        if problems:
            result["failed"] = True
            result["msg"] = "; ".join(problems)
        return result

    def _argument_errors(self, task_vars):
        """The role's variables against its argument spec, as the role's own validation would."""
        path = os.path.join(self._task.args["role_path"], "meta", "argument_specs.yml")
        options = self._loader.load_from_file(path)["argument_specs"]["main"].get("options", {})
        values = self._templar.template({name: task_vars[name] for name in options if name in task_vars})
        return ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True).error_messages

    def _host_problems(self, host, task_vars):
        problems = []
        if self._task.args.get("host_requirements"):
            found = self._execute_module(module_name="mtls.fleet.host_requirements", module_args={}, task_vars=task_vars)
            self._remove_tmp_path(self._connection._shell.tmpdir)
            if found.get("unreachable"):
                raise AnsibleConnectionFailure(found.get("msg", "unreachable"))
            if found.get("failed"):
                problems.append("host %s: %s" % (host, found.get("msg")))
        executable = self._task.args.get("executable")
        if executable:
            done = self._low_level_execute_command("test -x %s" % shlex.quote(executable["path"]))
            if done["rc"] == 255:
                raise AnsibleConnectionFailure(done.get("stderr") or "ssh exited with 255")
            if done["rc"] != 0:
                problems.append("host %s: %s" % (host, executable["missing"]))
        return problems
