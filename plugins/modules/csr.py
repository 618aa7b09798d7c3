#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: csr
short_description: Keep a private key on the host and return a CSR for it
version_added: 0.1.0
description:
  - For CSR mode of M(mtls.fleet.certificates), where a service's private key never leaves its
    host. Creates the key if it is missing, unreadable or of another type, and returns a
    certificate signing request for it.
  - The CSR carries only the key and a common name. The CA decides names, profile and lifetime
    from its own request list.
  - The key is written atomically, never through a symlink, with mode 0600 unless O(mode) says
    otherwise; a replaced key is kept as C(<path>.previous).
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description: Private key file on the host.
    type: path
    required: true
  key_type:
    description: Key type of a new key; an existing key of another type is replaced.
    type: str
    default: ecdsa-p256
    choices: [ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519]
  common_name:
    description: Common name written into the CSR (informational; the CA sets the subject).
    type: str
    required: true
  force:
    description:
      - Replace the key even if it is fine (key rotation in CSR mode). The certificate in use no
        longer matches the new key until the CA issues one for the returned CSR, so install the
        new certificate before reloading the service.
    type: bool
    default: false
seealso:
  - module: mtls.fleet.certificates
"""

EXAMPLES = r"""
- name: Make the key on the host and a CSR for the CA
  mtls.fleet.csr:
    path: /etc/mtls/web/key.pem
    common_name: web
    owner: root
    group: www-data
    mode: "0640"
  register: web_csr

- name: Sign it on the CA host with the rest of the fleet
  mtls.fleet.certificates:
    ca_path: /etc/mtls-fleet/ca
    certificates:
      - name: web
        subject_alt_name: [DNS:web.svc.example.com]
        csr: "{{ web_csr.csr }}"
  delegate_to: localhost
"""

RETURN = r"""
csr:
  description: PEM certificate signing request for the key (public data only).
  returned: always
  type: str
key_type:
  description: Type of the key now at O(path).
  returned: always
  type: str
  sample: ecdsa-p256
reason:
  description: Why a new key was made (V(missing), V(unreadable), V(key_type_changed), V(forced)); null when kept.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import pki
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileBatch, read_file
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import KEY_TYPES, USER_ERRORS, require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            key_type=dict(type="str", default="ecdsa-p256", choices=KEY_TYPES),
            common_name=dict(type="str", required=True),
            force=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    key_type = pki.KeyType.parse(params["key_type"])
    try:
        key, reason = _existing_key(params["path"], key_type)
        if params["force"]:
            key, reason = None, "forced"
        changed = key is None
        if changed:
            key = key_type.generate()
            if not module.check_mode:
                batch = FileBatch()
                batch.add(params["path"], pki.key_to_pem(key), 0o600)
                batch.commit()
        csr = pki.make_csr(key, params["common_name"]).decode()
    except USER_ERRORS as exc:
        module.fail_json(msg=f"{params['path']}: {exc}")
    file_args = module.load_file_common_arguments(params)
    if not module.check_mode or not changed:
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, csr=csr, key_type=key_type.value, reason=reason if changed else None)


def _existing_key(path, key_type):
    pem = read_file(path)
    if pem is None:
        return None, "missing"
    try:
        key = pki.load_private_key(pem, path)
    except pki.PKIError:
        return None, "unreadable"
    if pki.KeyType.of(key) is not key_type:
        return None, "key_type_changed"
    return key, None


if __name__ == "__main__":
    main()
