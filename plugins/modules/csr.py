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
  - With O(next_path), the module keeps a second key ready at O(next_path) and returns a CSR for
    it too (RV(next_csr)); the key at O(path), the one in use, is only read. A renewal then
    certifies the next key (M(mtls.fleet.certificates)), M(mtls.fleet.certificate_files) installs
    it as a new generation and puts a fresh next key in its place. So a key made on its host is
    new at every renewal and the key in use never changes in place, and a rollback serves the old
    pair again. File attributes then apply to O(next_path).
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.no_diff
  - mtls.fleet.attributes.cryptography
  - ansible.builtin.files
attributes:
  diff_mode:
    details: A new key has nothing to show; the result says whether one was made.
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
  next_path:
    description:
      - Where the host keeps the key for its next certificate, outside the generation in use, for
        example C(/etc/mtls/.web.next-key.pem). Made if missing, unreadable or of another type.
    type: path
    version_added: 0.4.0
  force:
    description:
      - Replace the key even if it is fine (key rotation in CSR mode); with O(next_path), replace the next key. The certificate in use no
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
  description:
    - PEM certificate signing request for the key at O(path) (public data only).
    - With O(next_path), null while there is no readable key at O(path) yet.
  returned: always
  type: str
next_csr:
  description: PEM certificate signing request for the key at O(next_path).
  returned: with O(next_path)
  type: str
next_path:
  description: O(next_path), for the task that installs the certificate (M(mtls.fleet.certificate_files)).
  returned: with O(next_path)
  type: str
key_type:
  description: Type of the key now at O(path).
  returned: always
  type: str
  sample: ecdsa-p256
reason:
  description:
    - Why a new key was made (V(missing), V(unreadable), V(key_type_changed), V(forced)); null when kept.
    - With O(next_path), about the next key, and also V(in_use) (the next key had gone into service).
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
            next_path=dict(type="path"),
            force=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    key_type = pki.KeyType.parse(params["key_type"])
    made_path = params["next_path"] or params["path"]  # the key this module makes when needed
    output = {}
    try:
        key, reason = _existing_key(made_path, key_type)
        in_use = _readable_key(params["path"]) if params["next_path"] else None
        if key is not None and in_use is not None and pki.public_bytes(key) == pki.public_bytes(in_use):
            key, reason = None, "in_use"  # a run stopped between installing the next key and making a fresh one
        elif key is not None and params["force"]:
            key, reason = None, "forced"
        changed = key is None
        if changed:
            key = key_type.generate()
            if not module.check_mode:
                batch = FileBatch(keep_previous=not params["next_path"])  # a next key that was never used is not worth keeping
                batch.add(made_path, pki.key_to_pem(key), 0o600)
                batch.commit()
        made_csr = pki.make_csr(key, params["common_name"]).decode()
        if params["next_path"]:
            output = dict(next_path=params["next_path"], next_csr=made_csr, csr=pki.make_csr(in_use, params["common_name"]).decode() if in_use else None)
        else:
            output = dict(csr=made_csr)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"{made_path}: {exc}")
    file_args = module.load_file_common_arguments(params, path=made_path)
    if not module.check_mode or not changed:
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, key_type=key_type.value, reason=reason if changed else None, **output)


def _readable_key(path):
    pem = read_file(path)
    try:
        return pki.load_private_key(pem, path) if pem is not None else None
    except pki.PKIError:
        return None  # the CA then certifies the next key


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
