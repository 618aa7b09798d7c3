# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of mtls.fleet.certificates: its options and its result.

Shared by the module and its action plugin. The action answers an idempotent pass on a CA on the
controller itself (run() with only_if_unchanged), without building and starting the module: for
a whole fleet that costs more than judging every certificate does.
"""

from __future__ import annotations

import os

from . import authority, ledger, pki, revocation
from .files import read_file
from .module_support import KEY_TYPES, LOCK_ARGS, PKCS11_ARGS, ca_directory_lock, ca_keys

HOLDER = "mtls.fleet.certificates"

ARGUMENT_SPEC = dict(
    ca_path=dict(type="path", required=True),
    ca_passphrase=dict(type="str", no_log=True),
    path=dict(type="path"),
    certificates=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            name=dict(type="str", required=True),
            common_name=dict(type="str"),
            subject_alt_name=dict(type="list", elements="str", required=True),
            profile=dict(type="str"),
            key_type=dict(type="str"),
            lifetime=dict(type="str"),
            renew_before=dict(type="str"),
            rotate_key=dict(type="bool"),
            csr=dict(type="str"),
            next_csr=dict(type="str"),
            force=dict(type="bool", default=False),
            host=dict(type="str"),
        ),
    ),
    profile=dict(type="str", default="service", choices=["server", "client", "service"]),
    key_type=dict(type="str", default="ecdsa-p256", choices=KEY_TYPES),
    lifetime=dict(type="str", default="90d"),
    renew_before=dict(type="str", default="33%"),
    rotate_key=dict(type="bool", default=True),
    policy=dict(
        type="dict",
        options=dict(
            allowed_dns=dict(type="list", elements="str", default=[]),
            allowed_ips=dict(type="list", elements="str", default=[]),
            allowed_uris=dict(type="list", elements="str", default=[]),
            max_lifetime=dict(type="str"),
        ),
    ),
    force=dict(type="bool", default=False),
    renew_revoked=dict(type="bool", default=True),
    return_content=dict(type="bool", default=False),
    **LOCK_ARGS,
    **PKCS11_ARGS,
)


def run(params: dict, now, check_mode=False, diff=False, only_if_unchanged=False) -> dict | None:
    """The module's result for validated params (USER_ERRORS name what is wrong).

    only_if_unchanged: None unless no certificate is due. Nothing is written then and no CA key is
    opened (no passphrase, no token session): the CA's certificates are enough to judge.
    """
    ca_path = params["ca_path"]
    store = params["path"] or os.path.join(ca_path, authority.ISSUED)
    defaults = {k: params[k] for k in ("profile", "key_type", "lifetime", "renew_before", "rotate_key")}
    requests = authority.parse_requests(params["certificates"], defaults)
    policy = pki.Policy.parse(params["policy"])
    with ca_directory_lock(ca_path, HOLDER, params["lock_timeout"], exclusive=not (check_mode or only_if_unchanged)):
        if not authority.ca_exists(ca_path) and (check_mode or only_if_unchanged):
            if only_if_unchanged:
                return None
            outcomes = authority.plan_without_ca(store, requests)
        else:
            judged = dict(revoked=revocation.revoked_serials(ca_path), renew_revoked=params["renew_revoked"])
            outcomes = authority.unchanged_outcomes(store, requests, authority.load_issuer(ca_path, None), policy, now,
                                                    params["force"], **judged)
            if outcomes is None and only_if_unchanged:
                return None
            if outcomes is None:
                with ca_keys(params, params["ca_passphrase"]) as keys:
                    issuer = authority.load_issuer(ca_path, keys)
                    outcomes = authority.issue(store, requests, issuer, policy, now, check_mode, params["force"], **judged)
                    if not check_mode:
                        ledger.record_issuance(ca_path, outcomes, {r.spec.name: r.host for r in requests}, issuer, now)
        bundle = (read_file(os.path.join(ca_path, authority.BUNDLE)) or b"").decode()
    return _result(outcomes, bundle, os.path.join(ca_path, authority.BUNDLE), params["return_content"], diff)


def _result(outcomes, bundle, bundle_path, return_content, diff) -> dict:
    changed = [o for o in outcomes if o.status != "unchanged"]
    result = dict(
        changed=bool(changed),
        certificates=[o.result(return_content) for o in outcomes],
        summary={status: sum(o.status == status for o in outcomes) for status in ("issued", "renewed", "unchanged")},
        bundle_path=bundle_path,
        bundle=bundle,
    )
    if diff and changed:
        result["diff"] = [
            dict(before_header=o.cert_path, after_header=o.cert_path, before=_facts_text(o.before), after=_facts_text(o.after))
            for o in changed
        ]
    return result


def _facts_text(cert):
    if cert is None:
        return ""
    facts = pki.describe(cert)
    keys = ("subject", "subject_alt_name", "profile", "key_type", "serial", "not_after")
    return "".join(f"{k}: {', '.join(facts[k]) if isinstance(facts[k], list) else facts[k]}\n" for k in keys)
