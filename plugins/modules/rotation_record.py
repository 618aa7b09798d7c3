#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_record
short_description: Record each host's rotation outcome in the CA directory, or read the record
version_added: 0.4.0
description:
  - Keeps C(rotations.json) in the CA directory on the CA host. For every host it holds when the
    last rotation ran, how it ended (the rotation summary's outcome), and when the last successful
    one (V(rotated) or V(kept ...)) was.
  - The playbook C(mtls.fleet.rotate) adds each run's outcomes; C(mtls.fleet.report) reads the
    record, shows it and exports C(mtls_rotation_last_success_timestamp_seconds), so a scheduled
    rotation that stopped running or keeps failing is seen, although its unit ends successfully.
  - Without O(outcomes) it only reads.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.no_diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca.lock
attributes:
  diff_mode:
    details: The result holds the outcomes recorded.
options:
  path:
    description: The CA directory.
    type: path
    required: true
  outcomes:
    description: This run's outcome of each host (the host's name to its outcome, for example V(rotated) or V(rolled back)).
    type: dict
seealso:
  - module: mtls.fleet.crl
"""

EXAMPLES = r"""
- name: Record this run's outcomes
  mtls.fleet.rotation_record:
    path: /var/lib/mtls-fleet/ca
    outcomes: {web-1: rotated, web-2: rolled back}
  delegate_to: localhost
  run_once: true

- name: Read when each host last rotated
  mtls.fleet.rotation_record:
    path: /var/lib/mtls-fleet/ca
  register: rotations
"""

RETURN = r"""
hosts:
  description:
    - Per host, C(last_run), C(last_outcome) and C(last_success) (null when none), times in UTC;
      C(last_run_timestamp) and C(last_success_timestamp), the same in seconds since the epoch (for metrics);
      and C(last_run_succeeded), whether the last run left the host rotated or kept.
  returned: always
  type: dict
  sample: {web-1: {last_run: "2026-12-06T03:00:00Z", last_outcome: rotated, last_success: "2026-12-06T03:00:00Z",
                   last_run_timestamp: 1796526000, last_success_timestamp: 1796526000, last_run_succeeded: true}}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import pki, rotation_record
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import LOCK_ARGS, USER_ERRORS, ca_directory_lock


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True), outcomes=dict(type="dict"), **LOCK_ARGS),
        supports_check_mode=True,
    )
    path, outcomes = module.params["path"], module.params["outcomes"]
    writes = bool(outcomes) and not module.check_mode
    try:
        if not writes and not os.path.isdir(path):
            module.exit_json(changed=bool(outcomes), hosts={})
        with ca_directory_lock(path, "mtls.fleet.rotation_record", module.params["lock_timeout"], exclusive=writes):
            hosts = (rotation_record.record(path, outcomes, pki.utcnow(), module.check_mode) if outcomes
                     else rotation_record.read(path))
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {path}: {exc}")
    module.exit_json(changed=bool(outcomes), hosts={host: rotation_record.with_timestamps(entry) for host, entry in hosts.items()})


if __name__ == "__main__":
    main()
