#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_probe
short_description: Probe an HTTPS endpoint over mutual TLS and report the certificate it serves
version_added: 0.1.0
description:
  - Connects from the host it runs on, presents a client certificate, verifies the server against
    a trust bundle and its name, sends one HTTP GET and reads the answer. Under TLS 1.3 a rejected
    client certificate only shows on that read, so a probe never passes on a handshake alone.
  - Reports the HTTP status and the serial and expiry of the certificate the server served, so a
    rollout can prove a host now serves its new certificate.
  - Read-only. Fails only when O(expect_status), O(expect_serial) or O(expect_client) are given and not met.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
  - mtls.fleet.attributes.cryptography
options:
  host:
    description: Address or name to connect to.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port.
    type: int
    required: true
  server_name:
    description: Name sent as SNI and checked against the server certificate's SANs.
    type: str
    required: true
  ca_bundle_path:
    description: Trust bundle to verify the server with.
    type: path
    required: true
  cert_path:
    description: Client certificate (chain) to present. Without it no client certificate is sent.
    type: path
  key_path:
    description: Key of O(cert_path).
    type: path
  url_path:
    description: HTTP path to GET.
    type: str
    default: /
  timeout:
    description: Seconds to wait for connect and each read.
    type: float
    default: 5.0
  expect_status:
    description: Fail unless the server answers with this HTTP status.
    type: int
  expect_serial:
    description: Fail unless the server serves the certificate with this serial (upper-case hex).
    type: str
  expect_client:
    description:
      - Fail unless the server V(accepted) the client certificate (any HTTP answer but 495/496; a
        403 from an allow-list still means the certificate was good), or V(refused) it (HTTP 495,
        or a TLS alert).
    type: str
    choices: [accepted, refused]
  postgresql:
    description:
      - Call a PostgreSQL server instead of HTTPS - its SSLRequest, the handshake, then a login; it accepted the client
        when the login reached "ready for query", and refused it with an authorization error (SQLSTATE 28000) or a TLS alert.
      - O(url_path) and O(expect_status) do not apply.
    type: dict
    version_added: 0.5.0
    suboptions:
      user:
        description: The role to log in as.
        type: str
        required: true
      database:
        description: The database.
        type: str
        default: postgres
"""

EXAMPLES = r"""
- name: Prove nginx serves the new certificate
  mtls.fleet.tls_probe:
    port: 8443
    server_name: backend-1
    ca_bundle_path: /etc/mtls/backend/ca-bundle.pem
    cert_path: /etc/mtls/backend/cert.pem
    key_path: /etc/mtls/backend/key.pem
    expect_serial: "{{ installed.services[0].serial }}"
  become: true
"""

RETURN = r"""
ok:
  description: Whether an HTTP response was read.
  returned: always
  type: bool
status:
  description: HTTP status of the response; with O(postgresql), V(ready) once logged in.
  returned: always
  type: raw
serial:
  description: Serial of the certificate the server served.
  returned: always
  type: str
not_after:
  description: Expiry of the certificate the server served.
  returned: always
  type: str
tls_version:
  description: Negotiated protocol, for example V(TLSv1.3).
  returned: always
  type: str
error:
  description: Why no response was read (TLS alert, refused connection, timeout).
  returned: always
  type: str
body:
  description: Start of the response body (up to 2000 characters).
  returned: always
  type: str
client:
  description: What the server did with the client certificate, V(accepted), V(refused), or V(unknown) (no TLS answer at all).
  returned: always
  type: str
seconds:
  description: Duration of the probe.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import probe
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", required=True),
            server_name=dict(type="str", required=True),
            ca_bundle_path=dict(type="path", required=True),
            cert_path=dict(type="path"),
            key_path=dict(type="path"),
            url_path=dict(type="str", default="/"),
            timeout=dict(type="float", default=5.0),
            expect_status=dict(type="int"),
            expect_serial=dict(type="str"),
            expect_client=dict(type="str", choices=["accepted", "refused"]),
            postgresql=dict(type="dict", options=dict(user=dict(type="str", required=True), database=dict(type="str", default="postgres"))),
        ),
        required_together=[("cert_path", "key_path")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    p = module.params
    result = probe.probe(p["host"], p["port"], p["server_name"], p["ca_bundle_path"], p["cert_path"], p["key_path"], p["url_path"], p["timeout"],
                         postgresql=p["postgresql"])
    where = f"https://{p['server_name']}:{p['port']}{p['url_path']} (via {p['host']})"
    if result["serial"] is None and (p["expect_status"] is not None or p["expect_serial"] or p["expect_client"] == "accepted"):
        module.fail_json(msg=f"{where}: no TLS answer ({result['error']})", client="unknown", **result)
    if p["expect_status"] is not None and result["status"] != p["expect_status"]:
        module.fail_json(msg=f"{where}: expected HTTP {p['expect_status']}, got {result['status'] or result['error']}", **result)
    if p["expect_serial"] and result["serial"] != p["expect_serial"].upper():
        module.fail_json(msg=f"{where}: serves serial {result['serial']}, expected {p['expect_serial']}", **result)
    verdict = probe.client_verdict(result)
    if p["expect_client"] and verdict != p["expect_client"]:
        module.fail_json(msg=f"{where}: the client certificate {p['cert_path']} was {verdict}, expected {p['expect_client']} "
                             f"(HTTP {result['status']}: {(result['body'] or result['error'] or '').strip()})", client=verdict, **result)
    module.exit_json(changed=False, client=verdict, **result)


if __name__ == "__main__":
    main()
