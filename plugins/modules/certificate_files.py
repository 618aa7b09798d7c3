#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_files
short_description: Install a host's certificate generation in one step
version_added: 0.1.0
description:
  - Installs, for every service of the host, C(key.pem), C(cert.pem) (leaf + intermediates) and
    C(ca-bundle.pem) into the service's directory, in one module call, so a fleet rollout costs
    one task per host.
  - Checks everything before writing anything. Every certificate must parse, verify against
    O(ca_bundle) and match the key it will be served with (the one sent, or in CSR mode the key
    already on the host). A pair nginx could not load is never installed.
  - A service's O(services[].path) is a symlink to its current generation, a sibling directory
    C(.<name>.gen<N>) (0750, root and the service's group) holding the three files (key
    O(services[].key_mode), public files 0644), written and synced in full before one rename of
    the symlink switches to it. A crash leaves the old generation or the new one, never a mix.
    The generation replaced is kept (named by C(.<name>.previous)) for rollback; older ones are
    removed. A directory left by mtls.fleet 0.2 becomes a generation at its next change.
  - With O(state=previous), serves each service's previous generation again (a rollback, one
    rename); the generation it replaces becomes the previous one.
  - Refuses, before writing anything, a certificate directory's parent that is not owned by root
    or is writable by group or others, and a service path that is another symlink. Temp files
    and generations a killed run left are removed. Installs on one host hold C(<parent>/.lock),
    so two runs at once take turns.
  - Needs root on the host (C(become)).
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
  - mtls.fleet.attributes.cryptography
options:
  services:
    description: The services of this host.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Service name, for messages and results.
        type: str
        required: true
      path:
        description: Directory of the service's files.
        type: path
        required: true
      certificate:
        description: PEM of the certificate file (leaf first, then intermediates). Required with O(state=present).
        type: str
      private_key:
        description: PEM of the private key. Leave out in CSR mode, where the key is already at C(<path>/key.pem).
        type: str
      next_key_path:
        description:
          - CSR mode with a next key (see O(mtls.fleet.csr#module:next_path) of M(mtls.fleet.csr)), the path
            where the host keeps the key for its next certificate.
          - A certificate for that key is installed with it as a new generation (the key in use stays
            with the previous generation, for a rollback), and a fresh next key of the same type takes
            its place, so the next renewal certifies a new key again.
        type: path
        version_added: 0.4.0
      group:
        description: Group that owns the directory and files; with O(services[].key_mode=0640) it may read the key.
        type: str
        default: root
      key_mode:
        description: Mode of the key file, V(0600) or V(0640) (and of the other files that hold or open the key).
        type: str
        default: "0600"
        choices: ["0600", "0640"]
      formats:
        description:
          - More files in the generation, beside C(key.pem), C(cert.pem) and C(ca-bundle.pem), switched with them.
          - V(haproxy) adds C(combined.pem) (the chain then the key, mode O(services[].key_mode)).
          - V(pkcs12) adds C(keystore.p12) (the key and chain under the password in C(keystore.pass), both mode
            O(services[].key_mode); kept as they are while they hold the same key and chain) and C(truststore.p12)
            (the bundle's CAs as Java trusted certificates, 0644, no password).
        type: list
        elements: str
        default: []
        choices: [haproxy, pkcs12]
        version_added: 0.5.0
  ca_bundle:
    description: PEM of the trust bundle, installed as C(ca-bundle.pem) next to each certificate. Required to install services.
    type: str
  crl:
    description:
      - PEM of the CA's CRLs (the C(crl) result of M(mtls.fleet.crl)), installed at O(crl_path)
        (0644, root) in the same call, checked first. Host-wide, not part of a service's
        generation, so O(state=previous) leaves it alone. With O(services) empty, only the CRLs
        are installed.
    type: str
  crl_path:
    description: Where O(crl) goes, for example C(/etc/mtls/crl.pem) (nginx's C(ssl_crl)).
    type: path
  state:
    description: V(present) installs the given generation; V(previous) restores the one before it.
    type: str
    default: present
    choices: [present, previous]
seealso:
  - module: mtls.fleet.certificates
  - module: mtls.fleet.certificate_info
"""

EXAMPLES = r"""
- name: Install this host's certificate generation
  mtls.fleet.certificate_files:
    ca_bundle: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/ca-bundle.pem') }}"
    services:
      - name: web
        path: /etc/mtls/web
        certificate: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/issued/web-1-web/cert.pem') }}"
        private_key: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/issued/web-1-web/key.pem') }}"
        group: www-data
        key_mode: "0640"
  become: true
"""

RETURN = r"""
services_changed:
  description: Whether any service's files changed (restart apps on this, not on RV(crl_changed)).
  returned: always
  type: bool
crl_changed:
  description: Whether the CRL file changed (nginx must reload).
  returned: always
  type: bool
services:
  description: One entry per service.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service name.
      type: str
    changed:
      description: Whether any of the service's files, modes or owners changed.
      type: bool
    serial:
      description: Serial of the certificate now installed.
      type: str
    previous_serial:
      description: Serial of the certificate it replaced, if any.
      type: str
    renewed:
      description: Whether the certificate is a new one (not only its files' bundle or modes changed). Not returned by O(state=previous).
      type: bool
    replaced:
      description: The files whose content changed, for example V(ca-bundle.pem) alone in a CA rollover's first phase. Not returned by O(state=previous).
      type: list
      elements: str
    not_after:
      description: Expiry of the installed certificate, UTC, ISO 8601.
      type: str
    cert_path:
      description: Path of the certificate file.
      type: str
    key_path:
      description: Path of the key file.
      type: str
    bundle_path:
      description: Path of the trust bundle.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import deploy, pki
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import USER_ERRORS, require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(
                type="list",
                elements="dict",
                required=True,
                options=deploy.SERVICE_OPTIONS,
            ),
            ca_bundle=dict(type="str"),
            crl=dict(type="str"),
            crl_path=dict(type="path"),
            state=dict(type="str", default="present", choices=["present", "previous"]),
        ),
        required_together=[("crl", "crl_path")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    try:
        restoring = module.params["state"] == "previous"
        services = [_service(entry, restoring) for entry in module.params["services"]]
        crl = module.params["crl"].encode() if module.params["crl"] and not restoring else None
        if crl is not None:
            pki.load_crls(crl, "crl")  # checked before any file is written
        if restoring:
            results = deploy.restore_previous(services, pki.utcnow(), module.check_mode)
        elif services:
            if not module.params["ca_bundle"]:
                raise pki.PKIError("ca_bundle is required to install services' certificates")
            results = deploy.install(services, module.params["ca_bundle"].encode(), pki.utcnow(), module.check_mode)
        else:
            results = []
        crl_changed = deploy.install_crl(module.params["crl_path"], crl, module.check_mode) if crl is not None else False
    except USER_ERRORS as exc:
        module.fail_json(msg=str(exc))
    except PermissionError as exc:
        module.fail_json(msg=f"{exc.filename}: permission denied; run this task as root (become: true)")
    changed = [r for r in results if r["changed"]]
    output = dict(changed=bool(changed) or crl_changed, services_changed=bool(changed), crl_changed=crl_changed, services=results)
    if module._diff and changed:
        output["diff"] = [
            dict(before_header=r["cert_path"], after_header=r["cert_path"],
                 before=f"serial: {r['previous_serial']}\n" if r["previous_serial"] else "", after=f"serial: {r['serial']}\n")
            for r in changed
        ]
    module.exit_json(**output)


def _service(entry, restoring):
    if not restoring and not entry["certificate"]:
        raise pki.PKIError(f"service {entry['name']!r}: certificate is required to install a generation")
    return deploy.service_from_options(entry)


if __name__ == "__main__":
    main()
