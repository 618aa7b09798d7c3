#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_config
short_description: Install an nginx configuration file only if nginx accepts it
version_added: 0.1.0
description:
  - Checks O(content) with C(nginx -t) before it takes the place of O(path). The new version is
    written under a name no include loads (a dot file), beside a copy of nginx's main
    configuration whose include of O(path) names it instead, and C(nginx -t -c) checks that copy.
    Only if nginx accepts it is O(path) replaced, atomically; otherwise the task fails with
    nginx's message and nothing changed. In one remote call, whether or not anything changed.
  - When no include of nginx's main configuration itself loads O(path) (it is included from
    another included file), the file is checked in place instead, and the previous one is put
    back if nginx rejects it. RV(checked) says which.
  - Does not reload nginx; notify a handler when the task reports a change.
  - The replaced file is kept as C(<path>.previous), which nginx's C(conf.d/*.conf) does not load.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
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
checked:
  description:
    - How nginx checked the new content - V(candidate) (before it took the place of O(path)), V(in place) (see above),
      or null when nothing new was written.
  returned: always
  type: str
  version_added: 0.4.0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import nginx_candidate
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
    checked = None
    try:
        before = read_file(path)
        batch = FileBatch()
        changed = batch.add(path, content, CONFIG_MODE, 0, 0)
        if changed and not module.check_mode:
            if module.params["validate"] and before != content:  # a mode fix alone needs no check
                checked = _check_candidate(module, path, content)
            batch.commit()
            if checked is None and module.params["validate"] and before != content:
                checked = "in place"
                _validate_or_restore(module, path, before)
    except FileError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=changed, path=path, checked=checked)
    if module._diff and changed:
        result["diff"] = dict(before_header=path, after_header=path, before=(before or b"").decode(), after=content.decode())
    module.exit_json(**result)


def _check_candidate(module, path, content):
    """nginx -t on the configuration as it will be, before path changes: 'candidate', or None when
    it can only be checked in place. Fails the module, with nothing changed, when nginx refuses it."""
    how, problem = nginx_candidate.check(module.run_command, path, content)
    if problem:
        module.fail_json(msg=f"nginx -t rejects the new {path}; nothing was changed and nginx keeps running the previous "
                             f"configuration: {problem}", rc=1, checked=how)
    return how


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
        rc=rc, checked="in place",
    )


if __name__ == "__main__":
    main()
