# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: controller
short_description: Whether a host name means the controller itself
version_added: 0.4.0
description:
  - True for C(localhost), C(127.0.0.1) and C(::1), the names under which the CA stays on the
    controller (where keys are read in place, and never fetched).
  - The same decision as the one behind the C(local) of P(mtls.fleet.ca_host#filter).
author: mtls.fleet developers (@mtls-fleet)
options:
  _input:
    description: A host name.
    type: str
    required: true
"""

EXAMPLES = r"""
ca_is_local: "{{ mtls_certs_ca_host is mtls.fleet.controller }}"
"""

RETURN = r"""
_value:
  description: Whether the name means the controller.
  type: bool
"""

from ansible_collections.mtls.fleet.plugins.module_utils.controller import is_controller


class TestModule:
    def tests(self):
        return {"controller": is_controller}
