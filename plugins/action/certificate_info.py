# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls.fleet.certificate_info: the host's files read by one shell command, judged here.

Starting a module costs a host about half a second of CPU (AnsiballZ, Ansible's module code,
cryptography), several times what reading its certificates with sh, stat, cat and openssl does.
So the action reads them that way and judges them with the module's own code, with the
controller's clock. Whatever the reading cannot settle (a symlink, an unreadable file, a key
openssl cannot read, bad options, no openssl, a connection or become method that cannot take the
script on stdin) goes to the module, which reports it as always.
"""

from __future__ import annotations

import secrets

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.mtls.fleet.plugins.module_utils import certinfo, pki
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileError
from ansible_collections.mtls.fleet.plugins.module_utils.requirements import installed_cryptography_is_recent


class ActionModule(NormalAction):

    def run(self, tmp=None, task_vars=None):
        if not self._task.async_val and not pki.CRYPTOGRAPHY_IMPORT_ERROR and installed_cryptography_is_recent():
            judged = self._judged_here()
            if judged is not None:
                return judged
        return super().run(tmp, task_vars)

    def _judged_here(self):
        validated = ArgumentSpecValidator(certinfo.ARGUMENT_SPEC).validate(self._task.args)
        if validated.error_messages:
            return None
        params = validated.validated_parameters
        if params["endpoints"]:  # a handshake with each endpoint happens on the host
            return None
        paths = certinfo.snapshot_paths(params)
        if any(path.startswith("~") or "$" in path for path, _is_key in paths):  # the host expands those
            return None
        if not self._pipes_stdin():
            return None
        marker = f"@@mtls-{secrets.token_hex(8)}"
        try:
            # The script goes in on stdin, as a pipelined module does: a command with no input gets a
            # terminal from the ssh connection, which would turn each file's newlines into CRLF.
            done = self._low_level_execute_command("/bin/sh -s mtls.fleet.certificate_info", sudoable=True,
                                                   in_data=certinfo.snapshot_command(paths, marker).encode())
        except AnsibleError:
            return None
        if done["rc"] != 0:
            return None
        try:
            snapshot = certinfo.Snapshot.parse(done["stdout"].encode("utf-8", "surrogateescape"), marker, paths)
            return certinfo.report(params, pki.utcnow(), snapshot)
        except (pki.PKIError, FileError, certinfo.Undecided):  # the module's user errors, or doubt
            return None

    def _pipes_stdin(self):
        """Whether the connection takes input for a command, as for pipelining (a become method that
        needs a terminal, such as su, does not)."""
        become = self._connection.become if self._play_context.become else None
        return getattr(self._connection, "has_pipelining", False) and not getattr(become, "require_tty", False)
