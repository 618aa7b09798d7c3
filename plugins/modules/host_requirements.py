#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# No syntax newer than Python 2.7 here: this module runs on hosts too old for the others, to say so.

DOCUMENTATION = r"""
module: host_requirements
short_description: Check that a host can run mtls.fleet's modules
version_added: 0.3.0
description:
  - Reads the Python version of the interpreter Ansible uses on the host, and the version of the
    C(cryptography) library it imports.
  - Fails, before anything changes, when Python is older than 3.7 or C(cryptography) is missing or
    older than 38.0, naming the interpreter, the version found and the fix (the package of the
    host's distribution, read from C(/etc/os-release)).
  - The preflight of role P(mtls.fleet.mtls_certs#role) runs it on every host of the fleet.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
options: {}
notes:
  - Written to run on Python 2.7 and newer, so that an old host gets this message and not a syntax
    error from another module. Whether Ansible itself can run a module there depends on the
    ansible-core release (2.17 and newer need Python 3.7 or newer on managed hosts).
seealso:
  - module: mtls.fleet.certificate_files
"""

EXAMPLES = r"""
- name: Check that this host can run mtls.fleet's modules
  mtls.fleet.host_requirements:
"""

RETURN = r"""
python_version:
  description: Version of the host's Python interpreter.
  returned: always
  type: str
  sample: 3.11.2
python_executable:
  description: Path of the interpreter.
  returned: always
  type: str
  sample: /usr/bin/python3
cryptography_version:
  description: Version of the C(cryptography) library, or V(null) when it cannot be imported.
  returned: always
  type: str
  sample: 38.0.4
distribution:
  description: The C(ID) of C(/etc/os-release), or an empty string.
  returned: always
  type: str
  sample: debian
"""

import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import requirements


def cryptography_version():
    try:
        import cryptography  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return cryptography.__version__


def os_release_ids():
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as handle:
                return requirements.os_release_ids(handle.read())
        except (IOError, OSError):
            continue
    return [""]


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    ids = os_release_ids()
    result = dict(
        changed=False,
        python_version=".".join(str(part) for part in sys.version_info[:3]),
        python_executable=sys.executable,
        cryptography_version=cryptography_version(),
        distribution=ids[0],
    )
    found = requirements.problems(sys.version_info, sys.executable, result["cryptography_version"], ids)
    if found:
        module.fail_json(msg=" ".join(found), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
