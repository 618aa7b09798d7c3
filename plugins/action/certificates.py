# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls.fleet.certificates: a pass with nothing due, on a CA the controller holds, is answered here.

Building and starting the module costs more than judging a whole fleet's certificates does, so
when the CA host is reached by the local connection (no become) the action judges them itself,
with the module's own code, and only runs the module when something is due. Any doubt (bad
options, an unreadable file, a missing CA) goes to the module too, which reports it as always.
"""

from __future__ import annotations

import gc

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.mtls.fleet.plugins.module_utils import pki
from ansible_collections.mtls.fleet.plugins.module_utils.bulk_issuance import ARGUMENT_SPEC, run
from ansible_collections.mtls.fleet.plugins.module_utils.locking import LockTimeout
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import USER_ERRORS
from ansible_collections.mtls.fleet.plugins.module_utils.requirements import installed_cryptography_is_recent


# What sends a pass to the module, which reports it as it always does.
NOT_JUDGED_HERE = USER_ERRORS + (OSError,)


class ActionModule(NormalAction):

    def run(self, tmp=None, task_vars=None):
        if self._judged_here():
            try:
                unchanged = self._unchanged_result()
            except LockTimeout as exc:  # the module would wait as long again
                return dict(failed=True, changed=False, msg=str(exc))
            if unchanged is not None:
                return unchanged
        return super().run(tmp, task_vars)

    def _judged_here(self):
        on_this_process = self._connection.transport == "local" and not self._play_context.become and not self._task.async_val
        return on_this_process and not pki.CRYPTOGRAPHY_IMPORT_ERROR and installed_cryptography_is_recent()

    def _unchanged_result(self):
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validated.error_messages:
            return None
        # This worker is a fork of the whole controller: left alone, the collector would walk the
        # controller's heap again and again while the judge reads a thousand certificates.
        gc.freeze()
        try:
            return run(validated.validated_parameters, pki.utcnow(), only_if_unchanged=True)
        except LockTimeout:
            raise
        except NOT_JUDGED_HERE:
            return None
