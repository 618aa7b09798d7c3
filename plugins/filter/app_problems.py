# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: app_problems
short_description: Check a host's mtls_app settings before anything changes
version_added: 0.3.0
description:
  - Returns every problem in a host's C(mtls_app_*) settings, each naming the host, the variable
    and the fix; an empty list when all is well.
  - Checks that the app's identity is one of the host's services, that the rotation mode is
    known and can be carried out (the unit exists on the host and, for V(reload), has an
    C(ExecReload=)), and that every endpoint in C(mtls_app_endpoints) can be probed.
author: mtls.fleet developers (@mtls-fleet)
positional: service, unit, unit_action, host_services, host, unit_state, files, keystore_formats
options:
  _input:
    description: The host's C(mtls_app_endpoints).
    type: list
    elements: raw
    required: true
  service:
    description: C(mtls_app_service).
    type: str
    required: true
  unit:
    description: C(mtls_app_unit).
    type: str
    required: true
  unit_action:
    description: C(mtls_app_unit_action).
    type: str
    required: true
  host_services:
    description: Names of the host's own services (C(mtls_certs_services)).
    type: list
    elements: str
    required: true
  host:
    description: Inventory hostname, for messages.
    type: str
    required: true
  unit_state:
    description:
      - The output of C(systemctl show --property=LoadState --property=CanReload) for the unit on the
        host; empty when it was not read (no unit).
      - The role no longer reads it in a task of its own; its preflight checks the unit on the host
        with the entries of P(mtls.fleet.app_host_needs#filter) instead, with the same messages.
    type: str
    default: ""
  files:
    description:
      - The settings written into the app's environment file, by variable name without the C(mtls_app_) prefix
        (C(certs_dir), C(source_dir), C(cert_file), C(key_file), C(ca_file), C(env_file), C(keystore_file),
        C(keystore_password_file), C(truststore_file)). A line break there would add a
        variable to the app's environment, so each must be a plain absolute path or file name.
    type: dict
    default: {}
    version_added: 0.4.0
  keystore_formats:
    description:
      - With C(mtls_app_keystore) on, the C(formats) of the app's service in C(mtls_certs_services), which must hold
        V(pkcs12) (the keystore and truststore come from its generation); leave out when the app reads PEM files only.
    type: list
    elements: str
    version_added: 0.5.0
"""

EXAMPLES = r"""
problems: "{{ mtls_app_endpoints | mtls.fleet.app_problems(mtls_app_service, mtls_app_unit, mtls_app_unit_action, ['api'], inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The problems found, each a sentence; empty when the settings are fine.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import unit_values

MODES = ("reload", "restart")
ENDPOINT_FIELDS = ("port", "server_name", "path", "status", "identity")


# The settings written into the app's environment file (EnvironmentFile=), with their checks.
FILES = {"certs_dir": unit_values.absolute_path, "source_dir": unit_values.absolute_path, "cert_file": unit_values.file_name,
         "key_file": unit_values.file_name, "ca_file": unit_values.file_name, "env_file": unit_values.absolute_path,
         "keystore_file": unit_values.file_name, "keystore_password_file": unit_values.file_name, "truststore_file": unit_values.file_name}


def app_problems(endpoints, service, unit, unit_action, host_services, host, unit_state="", files=None, keystore_formats=None):
    own = ", ".join(host_services) or "none"
    problems = []
    if keystore_formats is not None and service in host_services and "pkcs12" not in keystore_formats:
        problems.append(f"host {host}: mtls_app_keystore is on, but service {service!r} has no PKCS#12 stores; "
                        f"add formats: [pkcs12] to service {service!r} in mtls_certs_services")
    for name, value in (files or {}).items():
        fix = FILES[name](value)
        if fix:
            problems.append(f"host {host}: mtls_app_{name} {value!r} cannot go into the app's environment file as written; {fix}")
    if unit and unit_values.unit_name(unit):
        problems.append(f"host {host}: mtls_app_unit {unit!r} is not a unit name; {unit_values.unit_name(unit)}")
    state = dict(line.split("=", 1) for line in unit_state.splitlines() if "=" in line)
    if unit and state.get("LoadState", "loaded") != "loaded":
        problems.append(f"host {host}: {unit_missing(unit)}")
    elif unit and unit_action == "reload" and state.get("CanReload", "yes") != "yes":
        problems.append(f"host {host}: {unit_cannot_reload(unit)}")
    if service not in host_services:
        problems.append(f"host {host}: mtls_app_service ({service or 'empty'}) must be one of this host's mtls_certs_services ({own}); "
                        "it is the identity the app serves")
    if unit_action not in MODES:
        problems.append(f"host {host}: mtls_app_unit_action {unit_action!r} is not a rotation mode; use reload (the unit's "
                        "ExecReload= makes the app re-read its files, no connection is refused) or restart")
    elif unit_action == "reload" and not unit:
        problems.append(f"host {host}: mtls_app_unit_action is reload but mtls_app_unit is empty; name the app's systemd unit, "
                        "whose ExecReload= makes it re-read its files (e.g. ExecReload=/bin/kill -HUP $MAINPID)")
    if not isinstance(endpoints, list):
        return problems + [f"host {host}: mtls_app_endpoints must be a list of endpoints, e.g. [{{port: 9443}}]"]
    for index, endpoint in enumerate(endpoints):
        where = f"host {host}: mtls_app_endpoints[{index}]"
        if not isinstance(endpoint, dict):
            problems.append(f"{where} must be a mapping such as {{port: 9443, path: /healthz}}")
            continue
        unknown = sorted(set(endpoint) - set(ENDPOINT_FIELDS))
        if unknown:
            problems.append(f"{where} has unknown field(s) {', '.join(unknown)}; the fields are {', '.join(ENDPOINT_FIELDS)}")
        if "port" not in endpoint:
            problems.append(f"{where} has no port; add port: <the TCP port the app serves mTLS on>")
        elif not _in_range(endpoint["port"], 1, 65535):
            problems.append(f"{where}.port {endpoint['port']!r} is not a TCP port (1-65535)")
        if "status" in endpoint and not _in_range(endpoint["status"], 100, 599):
            problems.append(f"{where}.status {endpoint['status']!r} is not an HTTP status (100-599)")
        if not str(endpoint.get("path", "/")).startswith("/"):
            problems.append(f"{where}.path {endpoint['path']!r} must start with /")
        if "identity" in endpoint and endpoint["identity"] not in host_services:
            problems.append(f"{where}.identity {endpoint['identity']!r} is not one of this host's mtls_certs_services ({own}); "
                            "the probe presents one of the host's own identities")
    return problems


def unit_missing(unit):
    return f"mtls_app_unit {unit} is not a unit on the host; install the app and its unit before mtls_app runs, or fix the name"


def unit_cannot_reload(unit):
    return (f"mtls_app_unit_action is reload but {unit} has no ExecReload=; add ExecReload=/bin/kill -HUP $MAINPID "
            "(the app must re-read its files on SIGHUP) or use mtls_app_unit_action: restart")


def _in_range(value, low, high):
    try:
        return low <= int(value) <= high and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        return False


class FilterModule:
    def filters(self):
        return {"app_problems": app_problems}
