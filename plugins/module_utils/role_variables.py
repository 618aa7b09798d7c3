# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's variables in scope against the options it knows: a typo is found, with its likely fix."""

from __future__ import annotations

import difflib


def unknown(names, known, own, role, host):
    """One sentence per name that is neither an option of the role (known) nor a variable the role
    or the playbooks set themselves (own), with the closest option as the likely fix."""
    problems = []
    for name in sorted(set(names) - set(known) - set(own)):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        fix = f"did you mean {close[0]}?" if close else f"the role's variables are listed in {role}/defaults/main.yml"
        problems.append(f"host {host}: unknown variable {name}; {fix}")
    return problems
