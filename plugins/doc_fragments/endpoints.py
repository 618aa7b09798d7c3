# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # A host's mTLS endpoints, as mtls.fleet.host_transaction and mtls.fleet.trust_check take them.
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - mTLS endpoints, nginx servers, apps, HAProxy frontends and PostgreSQL alike, as P(mtls.fleet.endpoints#filter) lists them.
      - The host's own, or for M(mtls.fleet.revocation_check) the other hosts'.
    type: list
    elements: dict
    default: []
    suboptions:
      kind:
        description: V(nginx), V(app), V(haproxy) (all HTTPS) or V(postgresql) (a login over PostgreSQL's TLS).
        type: str
        required: true
        choices: [nginx, app, haproxy, postgresql]
      service:
        description: The identity it serves.
        type: str
        required: true
      port:
        description: Its port on 127.0.0.1.
        type: int
        required: true
      server_name:
        description: The name clients dial (SNI and Host).
        type: str
        required: true
      path:
        description: URL path to request.
        type: str
        default: /
      status:
        description: The HTTP status to expect; any answer that accepted the client when left out.
        type: int
      identity:
        description: Which of the host's identities probes it (default O(endpoints[].service)).
        type: str
      label:
        description: Its name in messages.
        type: str
      host:
        description: The inventory host that serves it (results name it).
        type: str
      address:
        description:
          - Where other hosts reach it. M(mtls.fleet.revocation_check) calls it there; modules that
            call a host's own endpoints call them on 127.0.0.1 and ignore it.
        type: str
      user:
        description: V(postgresql) endpoints, the role the identity logs in as (its certificate's name must map to it).
        type: str
        default: ""
      database:
        description: V(postgresql) endpoints, the database it logs in to.
        type: str
        default: ""
"""
