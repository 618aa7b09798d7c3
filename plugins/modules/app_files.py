#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_files
short_description: Give an application its certificate directory, links to the current generation and an environment file
version_added: 0.4.0
description:
  - In one remote call, whether or not anything changed. Used by the C(mtls.fleet.mtls_app) role.
  - Creates or fixes O(path) (owner O(owner), group O(group), mode C(0750)); a missing parent is created with mode C(0755).
  - Links each of O(links) inside O(path) to its target, usually a file of the generation that
    M(mtls.fleet.certificate_files) keeps current, so a rotation or a rollback reaches the app
    without this module. A link is replaced atomically; a name that exists and is not a link is
    an error, never replaced.
  - Writes O(env_path) atomically with O(env_content), owner C(root), group O(group), mode C(0640).
  - Does not restart or reload the application; notify a handler when the task reports a change.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
options:
  path:
    description: The application's certificate directory.
    type: path
    required: true
  owner:
    description: User (name or uid) that owns O(path) and the links.
    type: str
    default: root
  group:
    description: Group (name or gid) of O(path), the links and O(env_path); the application reads through it.
    type: str
    default: root
  links:
    description: File names in O(path) and what each links to.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The name the application opens, inside O(path).
        type: str
        required: true
      target:
        description: The file it links to (absolute path).
        type: path
        required: true
  env_path:
    description: The environment file, for a systemd unit's C(EnvironmentFile=).
    type: path
    required: true
  env_content:
    description: Its content, usually rendered with C(lookup('ansible.builtin.template', ...)).
    type: str
    required: true
seealso:
  - module: mtls.fleet.certificate_files
"""

EXAMPLES = r"""
- name: Give the app its files
  mtls.fleet.app_files:
    path: /opt/billing/certs
    owner: billing
    group: billing
    links:
      - {name: server-cert.pem, target: /etc/mtls/billing/cert.pem}
      - {name: server-key.pem, target: /etc/mtls/billing/key.pem}
      - {name: ca-cert.pem, target: /etc/mtls/billing/ca-bundle.pem}
    env_path: /etc/default/billing-mtls
    env_content: "{{ lookup('ansible.builtin.template', 'mtls.env.j2') }}"
  notify: Reload billing
"""

RETURN = r"""
changes:
  description: The paths created or changed (or that would be, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [/opt/billing/certs, /opt/billing/certs/server-cert.pem]
"""

import grp
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import app_files
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            links=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                target=dict(type="path", required=True),
            )),
            env_path=dict(type="path", required=True),
            env_content=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    uid = _id_of(module, "owner", params["owner"], pwd.getpwnam, "pw_uid", "create the user, or name another")
    gid = _id_of(module, "group", params["group"], grp.getgrnam, "gr_gid", "create the group, or name another")
    for link in params["links"]:
        if "/" in link["name"] or link["name"] in ("", ".", ".."):
            module.fail_json(msg=f"links: {link['name']!r} is not a file name; name a file inside {params['path']}")
    content = params["env_content"].encode()
    if not content.endswith(b"\n"):
        content += b"\n"
    try:
        changes = app_files.apply(params["path"], uid, gid, {link["name"]: link["target"] for link in params["links"]},
                                  params["env_path"], content, module.check_mode)
    except (FileError, OSError) as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=bool(changes), changes=[change["path"] for change in changes])
    if module._diff and changes:
        result["diff"] = [dict(before_header=c["path"], after_header=c["path"], before=c["before"], after=c["after"]) for c in changes]
    module.exit_json(**result)


def _id_of(module, field, value, lookup, attribute, fix):
    if value.isdigit():
        return int(value)
    try:
        return getattr(lookup(value), attribute)
    except KeyError:
        module.fail_json(msg=f"{field}: {value!r} does not exist on this host; {fix}")
    return None


if __name__ == "__main__":
    main()
