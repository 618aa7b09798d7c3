#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger_info
short_description: Verify the CA's issuance ledger and read what the CA issued and revoked
version_added: 0.5.0
description:
  - Every issuance, renewal, revocation, new CA and CA rollover phase is appended to C(ledger.jsonl)
    in the CA directory, one JSON line each. Each line holds the SHA-256 of the line before it and
    is signed by the CA key that issues at the time (a file key or a key in a PKCS#11 token).
  - This module checks every line. A changed line fails its signature, a removed or reordered
    line breaks the chain, a line signed by a key that is not the CA's is named, and lines cut
    from the end show as certificates or revocations the store holds but the ledger does not name.
  - It also returns what C(mtls.fleet.report) compares every endpoint with. That is every serial
    the ledger says was issued or revoked, and the store's current certificate of each name.
  - A CA directory that issued before the ledger existed starts it with its next change. The first
    entry then lists the certificates and revocations the directory already held.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca.lock
options:
  path:
    description: The CA directory.
    type: path
    required: true
seealso:
  - module: mtls.fleet.certificates
  - module: mtls.fleet.crl
  - module: mtls.fleet.ca_rollover
"""

EXAMPLES = r"""
- name: Verify the ledger and read the CA's record
  mtls.fleet.ledger_info:
    path: /var/lib/mtls-fleet/ca
  register: record

- name: Fail when the ledger was changed
  ansible.builtin.assert:
    that: record.ledger.intact and not record.ledger.unrecorded
    fail_msg: "{{ record.ledger.summary }}"
"""

RETURN = r"""
ledger:
  description:
    - The verdict. C(exists) and C(intact) say whether there is a ledger and whether every line
      verifies. C(entries) counts the lines, C(since) is the time of the first entry and C(last)
      the time of the last one that verified.
    - C(broken_at) and C(problem) name the first line that does not verify, and why.
    - C(unrecorded) lists the store's certificates and revocations the ledger does not name.
    - C(summary) is one line that says it all.
  returned: always
  type: dict
  sample: {exists: true, intact: true, entries: 12, since: "2026-12-06T17:40:00Z", last: "2026-12-06T18:02:11Z",
           broken_at: null, problem: null, unrecorded: [], summary: "intact since 2026-12-06T17:40:00Z: 12 entries, the last at 2026-12-06T18:02:11Z"}
issued:
  description: Every serial the ledger says this CA issued (the store's, before there was a ledger), with C(name), C(host), C(status) and C(time).
  returned: always
  type: dict
revoked:
  description: Every revoked serial (from C(revoked.json)), with C(name) and C(reason).
  returned: always
  type: dict
current:
  description: The store's current certificate of each name, with C(serial) and C(host).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import ledger
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import LOCK_ARGS, USER_ERRORS, ca_directory_lock, require_cryptography


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type="path", required=True), **LOCK_ARGS), supports_check_mode=True)
    require_cryptography(module)
    path = module.params["path"]
    if not os.path.isdir(path):
        module.fail_json(msg=f"CA {path}: the directory does not exist; check mtls_ca_host and mtls_ca_path")
    try:
        with ca_directory_lock(path, "mtls.fleet.ledger_info", module.params["lock_timeout"], exclusive=False):
            record = ledger.store_record(path)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {path}: {exc}")
    module.exit_json(changed=False, **record)


if __name__ == "__main__":
    main()
