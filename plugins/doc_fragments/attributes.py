# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Every module: with ansible.builtin.action_common_attributes (the attributes' descriptions)
    # and one of the variants below (what it does in diff mode).
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
"""

    # Changes nothing anywhere.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    details: It changes nothing, so check mode runs it as a normal run does.
  diff_mode:
    support: N/A
    details: It changes nothing.
"""

    # Shows what it changes; never key material.
    DIFF = r"""
options: {}
attributes:
  diff_mode:
    support: full
    details: Never shows key material.
"""

    # Changes state but has no diff to show; the module says why in its own details.
    NO_DIFF = r"""
options: {}
attributes:
  diff_mode:
    support: none
"""

    # The modules that run on cryptography (the host's, or the CA host's).
    CRYPTOGRAPHY = r"""
options: {}
requirements:
  - cryptography >= 38.0
"""
