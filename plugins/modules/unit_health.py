#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: unit_health
short_description: Check that a systemd unit stays up after its reload or restart
version_added: 0.4.0
description:
  - Watches a service unit for O(seconds) and fails if it stops being active, if systemd
    restarts it (C(auto-restart), a growing C(NRestarts)), or if its main process is replaced.
  - The health gate of an app that declares no endpoints to probe (C(mtls_app_endpoints)). An app
    that cannot read its new certificate or key exits or crash-loops within moments of its reload
    or restart, and the rotation then rolls the host back as for a failed probe.
  - Read-only.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
options:
  name:
    description: The unit, for example C(api.service).
    type: str
    required: true
  seconds:
    description: How long the unit must stay up.
    type: float
    default: 5.0
seealso:
  - module: mtls.fleet.tls_probe
"""

EXAMPLES = r"""
- name: The app is still up 5 seconds after its restart
  mtls.fleet.unit_health:
    name: api.service
    seconds: 5
"""

RETURN = r"""
active_state:
  description: The unit's C(ActiveState) when the watch ended.
  returned: always
  type: str
  sample: active
sub_state:
  description: The unit's C(SubState) when the watch ended.
  returned: always
  type: str
  sample: running
restarts:
  description: The unit's C(NRestarts) when the watch ended.
  returned: always
  type: int
main_pid:
  description: The unit's main process when the watch ended (0 when it has none).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import unit_health


def main():
    module = AnsibleModule(
        argument_spec=dict(name=dict(type="str", required=True), seconds=dict(type="float", default=5.0)),
        supports_check_mode=True,
    )
    name = module.params["name"]
    systemctl = module.get_bin_path("systemctl", required=True)

    def read():
        rc, out, err = module.run_command([systemctl, "show", f"--property={','.join(unit_health.PROPERTIES)}", "--", name])
        if rc != 0:
            module.fail_json(msg=f"unit {name}: systemctl show failed: {err.strip() or out.strip()}")
        return unit_health.UnitState.parse(out)

    state, found = unit_health.watch(read, module.params["seconds"])
    result = dict(active_state=state.active, sub_state=state.sub, restarts=state.restarts, main_pid=state.main_pid)
    if found:
        module.fail_json(msg=f"unit {name} did not stay up for {module.params['seconds']:g} s after its reload or restart: {found}; "
                             f"see journalctl -u {name}", **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
