#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_config
short_description: Install an nginx configuration file only if nginx accepts it
version_added: 0.1.0
description:
  - Writes O(content) to O(path) atomically, then runs C(nginx -t). If nginx rejects the new
    configuration, the previous file is put back (or the new one removed) and the task fails
    with nginx's message, so a broken configuration never reaches a running nginx. In one
    remote call, whether or not anything changed.
  - Does not reload nginx; notify a handler when the task reports a change.
  - The replaced file is kept as C(<path>.previous), which nginx's C(conf.d/*.conf) does not load.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: The configuration file, for example C(/etc/nginx/conf.d/mtls-fleet.conf).
    type: path
    required: true
  content:
    description: The configuration, usually rendered with C(lookup('ansible.builtin.template', ...)).
    type: str
    required: true
  validate:
    description: Run C(nginx -t) after writing and restore the previous file if it fails.
    type: bool
    default: true
seealso:
  - module: mtls.fleet.certificate_files
"""

EXAMPLES = r"""
- name: Configure nginx, checked by nginx before it can take effect
  mtls.fleet.nginx_config:
    path: /etc/nginx/conf.d/mtls-fleet.conf
    content: "{{ lookup('ansible.builtin.template', 'mtls-fleet.conf.j2') }}"
  notify: Reload nginx
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils.files import PREVIOUS_SUFFIX, FileBatch, FileError, read_file

CONFIG_MODE = 0o644


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True),
            validate=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    path, content = module.params["path"], module.params["content"].encode()
    if not content.endswith(b"\n"):
        content += b"\n"
    try:
        before = read_file(path)
        batch = FileBatch()
        changed = batch.add(path, content, CONFIG_MODE, 0, 0)
        if changed and not module.check_mode:
            batch.commit()
            if module.params["validate"] and before != content:  # a mode fix alone needs no check
                _validate_or_restore(module, path, before)
    except FileError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=changed, path=path)
    if module._diff and changed:
        result["diff"] = dict(before_header=path, after_header=path, before=(before or b"").decode(), after=content.decode())
    module.exit_json(**result)


def _validate_or_restore(module, path, before):
    rc, out, err = module.run_command(["nginx", "-t", "-q"])
    if rc == 0:
        return
    if before is None:
        os.unlink(path)
    else:
        os.replace(path + PREVIOUS_SUFFIX, path)
    module.fail_json(
        msg=f"nginx -t rejects the new {path}, so the previous configuration was put back and nginx keeps running it: {(err or out).strip()}",
        rc=rc,
    )


if __name__ == "__main__":
    main()
