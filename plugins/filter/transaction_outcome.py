# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: transaction_outcome
short_description: A rotated host's outcome, from its host transaction's result
version_added: 0.4.0
description:
  - Returns C(outcome) (the rotation summary's last column - V(rotated), V(kept), V(kept (new CRLs)),
    V(rolled back), V(rolled back, NOT SERVING), V(lost during its rollout), V(planned (check mode))),
    C(serving) (the generation the host serves) and C(failure) (the message that fails the run for
    this host, or an empty string).
  - A host found serving another generation than the one installed (a run killed between install
    and reload) and converged by its transaction counts as rotated.
author: mtls.fleet developers (@mtls-fleet)
positional: host, on_failure, check_mode
options:
  _input:
    description: The registered result of M(mtls.fleet.host_transaction) (or of the task that could not reach the host).
    type: dict
    required: true
  host:
    description: The host's inventory name, for the message.
    type: str
    required: true
  on_failure:
    description: C(mtls_rotate_on_failure) (what a rolled-back host stops), for the message.
    type: str
    required: true
  check_mode:
    description: Whether the run is in check mode.
    type: bool
    required: true
"""

EXAMPLES = r"""
__mtls_rotated: "{{ mtls_certs_result | mtls.fleet.transaction_outcome(inventory_hostname, 'stop', ansible_check_mode) }}"
"""

RETURN = r"""
_value:
  description: C(outcome), C(serving) and C(failure).
  type: dict
"""

from ansible_collections.mtls.fleet.plugins.module_utils.rotation_record import transaction_outcome


class FilterModule:
    def filters(self):
        return {"transaction_outcome": transaction_outcome}
