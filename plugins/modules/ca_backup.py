#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_backup
short_description: Back up the CA directory encrypted, or restore it
version_added: 0.3.0
description:
  - Runs on the CA host. With O(state=backup), writes every file of the CA directory (keys,
    certificates, the store of issued certificates, revocations, CRLs, rollover state) with its
    mode into one archive, encrypted with AES-256-GCM under a key derived from O(passphrase)
    with scrypt (N=2^17, named in the authenticated header; archives of 0.4 still open). The
    archive is written atomically, mode 0600. Holds the CA lock (shared) while it
    reads, so it sees a consistent state.
  - With O(state=restore), decrypts and checks the archive, writes the CA directory beside its
    place and moves it there in one rename. The restored CA is the same root, with the same
    serials and revocations. A wrong passphrase or a damaged archive changes nothing.
  - A restore never replaces a CA. It is refused when O(path) holds another CA or other files,
    and unchanged when O(path) already holds exactly the archive's state.
  - Keep the archive off the CA host and the passphrase in Ansible Vault, apart from it.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.no_diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca.lock
attributes:
  diff_mode:
    details: An archive is encrypted; the result names the root and counts the certificates and revocations.
options:
  path:
    description: Directory of the CA, as for M(mtls.fleet.ca).
    type: path
    required: true
  archive:
    description: The encrypted archive on the CA host.
    type: path
    required: true
  state:
    description: V(backup) writes O(archive) from O(path); V(restore) brings O(path) back from O(archive).
    type: str
    choices: [backup, restore]
    default: backup
  passphrase:
    description: Passphrase the archive is encrypted with, at least 12 characters.
    type: str
    required: true
seealso:
  - module: mtls.fleet.ca
"""

EXAMPLES = r"""
- name: Back up the CA
  mtls.fleet.ca_backup:
    path: /var/lib/mtls-fleet/ca
    archive: /var/backups/mtls-fleet-ca.enc
    passphrase: "{{ vault_mtls_ca_backup_passphrase }}"

- name: Restore it after the CA host was rebuilt
  mtls.fleet.ca_backup:
    path: /var/lib/mtls-fleet/ca
    archive: /var/backups/mtls-fleet-ca.enc
    passphrase: "{{ vault_mtls_ca_backup_passphrase }}"
    state: restore
"""

RETURN = r"""
archive:
  description: Path of the archive.
  returned: always
  type: str
root:
  description: Common name of the root CA in the archive.
  returned: always
  type: str
  sample: mtls.fleet root CA
root_fingerprint:
  description: SHA-256 fingerprint of that root, as openssl prints it.
  returned: always
  type: str
files:
  description: How many files the archive holds.
  returned: always
  type: int
certificates:
  description: How many issued certificates the store in the archive holds.
  returned: always
  type: int
revocations:
  description: How many revocations the archive records.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import backup
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import LOCK_ARGS, USER_ERRORS, ca_directory_lock, require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            archive=dict(type="path", required=True),
            state=dict(type="str", choices=["backup", "restore"], default="backup"),
            passphrase=dict(type="str", required=True, no_log=True),
            **LOCK_ARGS,
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    try:
        if params["state"] == "backup":
            with ca_directory_lock(params["path"], "mtls.fleet.ca_backup", params["lock_timeout"], exclusive=False):
                summary = backup.backup(params["path"], params["archive"], params["passphrase"], module.check_mode)
            changed = True
        else:
            with ca_directory_lock(params["path"], backup.RESTORER, params["lock_timeout"], exclusive=not module.check_mode):
                changed, summary = backup.restore(params["path"], params["archive"], params["passphrase"], module.check_mode)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {params['path']}: {exc}")
    module.exit_json(changed=changed, archive=params["archive"], **summary)


if __name__ == "__main__":
    main()
