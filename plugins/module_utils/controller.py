# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a host name means the controller itself. No Ansible imports."""

from __future__ import annotations

NAMES = ("localhost", "127.0.0.1", "::1")


def is_controller(name):
    return str(name) in NAMES
