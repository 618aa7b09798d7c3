# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host needs to run mtls.fleet's modules, and what to do when it lacks it.

Written for Python 2.7 and newer, with no imports: mtls.fleet.host_requirements runs it on hosts
too old for the rest of the collection, to say so plainly instead of failing with a SyntaxError.
"""

MINIMUM_PYTHON = (3, 7)
MINIMUM_CRYPTOGRAPHY_VERSION = "38.0"

# os-release ID or ID_LIKE -> how that family installs its cryptography package
_CRYPTOGRAPHY_PACKAGES = (
    (("debian", "ubuntu"), "apt-get install python3-cryptography"),
    (("rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"), "dnf install python3-cryptography"),
    (("suse", "opensuse", "sles"), "zypper install python3-cryptography"),
    (("alpine",), "apk add py3-cryptography"),
    (("arch",), "pacman -S python-cryptography"),
)


def version_tuple(text):
    """(38, 0, 4) for '38.0.4'; stops at the first part that is not a number ('3.4.8rc1' -> (3, 4))."""
    parts = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def cryptography_is_recent(version):
    """Whether this cryptography version is one mtls.fleet's modules run with."""
    return version_tuple(version) >= version_tuple(MINIMUM_CRYPTOGRAPHY_VERSION)


def installed_cryptography_is_recent():
    """Whether this Python's cryptography is one mtls.fleet's modules run with (an action plugin
    asks it of the controller before it judges there instead of starting the module)."""
    try:
        import cryptography  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False
    return cryptography_is_recent(cryptography.__version__)


def os_release_ids(text):
    """The distribution's ID followed by its ID_LIKE entries, from the text of /etc/os-release."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip().strip("\"'")
    return [fields.get("ID", "")] + fields.get("ID_LIKE", "").split()


def cryptography_advice(ids, python_executable):
    """How to get cryptography >= the minimum for this interpreter on this distribution."""
    pip = "%s -m pip install 'cryptography>=%s'" % (python_executable, MINIMUM_CRYPTOGRAPHY_VERSION)
    for family, command in _CRYPTOGRAPHY_PACKAGES:
        if any(distribution in family for distribution in ids):
            return "%s (if that package is older than %s, as on Ubuntu 22.04 or RHEL 9: %s)" % (
                command, MINIMUM_CRYPTOGRAPHY_VERSION, pip)
    return pip


def problems(python_version, python_executable, cryptography_version, ids):
    """What keeps this host from running mtls.fleet's modules, each with its fix; [] if nothing."""
    found = []
    minimum = ".".join(str(part) for part in MINIMUM_PYTHON)
    if tuple(python_version[:2]) < MINIMUM_PYTHON:
        version = ".".join(str(part) for part in python_version[:3])
        found.append(
            "Python %s at %s is older than %s, which mtls.fleet's modules need: install Python %s or newer on this host "
            "and set ansible_python_interpreter to it." % (version, python_executable, minimum, minimum))
    if cryptography_version is None:
        found.append("The Python library cryptography is not installed for %s; install it: %s." % (
            python_executable, cryptography_advice(ids, python_executable)))
    elif not cryptography_is_recent(cryptography_version):
        found.append("cryptography %s for %s is older than %s; upgrade it: %s." % (
            cryptography_version, python_executable, MINIMUM_CRYPTOGRAPHY_VERSION, cryptography_advice(ids, python_executable)))
    return found
