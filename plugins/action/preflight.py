# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One role's checks of one host in one task: every problem is found, then all are reported."""

from __future__ import annotations

import os
import shlex

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.mtls.fleet.plugins.module_utils import role_variables


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role_path", "own_variables", "problems", "host_requirements", "host_has"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        host = task_vars.get("inventory_hostname")
        role_path = self._task.args["role_path"]
        role = os.path.basename(role_path)
        # Parsed when the role was loaded; this worker only reads it, so it needs no copy of its own.
        spec = self._loader.load_from_file(os.path.join(role_path, "meta", "argument_specs.yml"), unsafe=True)
        options = spec["argument_specs"]["main"].get("options", {})
        problems = ["host %s: %s" % (host, message) for message in self._argument_errors(options, task_vars)]
        problems += role_variables.unknown([name for name in task_vars if name.startswith(role + "_")], options,
                                           self._task.args.get("own_variables") or [], role, host)
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

    def _argument_errors(self, options, task_vars):
        """The role's variables against its argument spec, as the role's own validation would."""
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
        needs = self._task.args.get("host_has") or []
        if needs:
            done = self._low_level_execute_command(host_has_script(needs))
            if done["rc"] == 255:
                raise AnsibleConnectionFailure(done.get("stderr") or "ssh exited with 255")
            problems += ["host %s: %s" % (host, message) for message in host_has_problems(needs, done["stdout"])]
        return problems


# Each check is a shell test; a unit is "loaded" by systemd, or "can reload" (has ExecReload=).
HOST_TESTS = {
    "executable": "test -x %s",
    "user": "getent passwd %s >/dev/null",
    "group": "getent group %s >/dev/null",
    "unit": 'test "$(systemctl show --property=LoadState --value -- %s 2>/dev/null)" = loaded',
    "unit_reload": 'test "$(systemctl show --property=CanReload --value -- %s 2>/dev/null)" = yes',
}


def _kind(need):
    kinds = [kind for kind in HOST_TESTS if kind in need]
    if len(kinds) != 1 or "missing" not in need:
        raise AnsibleActionFail("host_has: each entry names one of %s, and missing (what to say and the fix): %r"
                                % (", ".join(HOST_TESTS), need))
    return kinds[0]


def host_has_script(needs):
    """One shell command for every check: a line "<index> yes|no" each (one round trip to the host)."""
    lines = []
    for index, need in enumerate(needs):
        kind = _kind(need)
        lines.append("if %s; then echo '%d yes'; else echo '%d no'; fi" % (HOST_TESTS[kind] % shlex.quote(str(need[kind])), index, index))
    return "\n".join(lines)


def host_has_problems(needs, output):
    """The missing messages of the failed checks. A unit's unit_reload is not reported when the unit
    itself is missing: its unit check says what to do first."""
    answers = dict(line.split(" ", 1) for line in output.splitlines() if line.count(" ") == 1)
    missing_units = {str(need["unit"]) for index, need in enumerate(needs) if "unit" in need and answers.get(str(index)) == "no"}
    problems = []
    for index, need in enumerate(needs):
        answer = answers.get(str(index))
        if answer == "yes" or ("unit_reload" in need and str(need["unit_reload"]) in missing_units):
            continue
        problems.append(need["missing"] if answer == "no" else "could not check %s %s on the host (%s)" % (_kind(need), need[_kind(need)], output.strip()))
    return problems
