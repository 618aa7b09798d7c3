# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each value the mtls_nginx role writes into nginx's configuration may hold. No Ansible imports.

Inventory values are written into the configuration as they are, unquoted, so a ';', '{', '}',
quote, '$', '#' or line break in one would end the directive and add others that still pass
`nginx -t` (a location without the allow-list, a plaintext server). Each check accepts only what
its directive takes, and returns what to write instead, or None when the value is fine.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986's unreserved and sub-delims less the ones nginx reads as syntax (' ; $), '%' escapes, ':' '@' '/'.
_URL_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/-]*")
_SERVER_NAME = re.compile(r"(?:\*\.)?(?:[A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+(?:\.\*)?|\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_TIME_UNIT = r"(?:ms|[smhdwMy])"
_TIME = re.compile(rf"[0-9]{{1,9}}{_TIME_UNIT}?|(?:[0-9]{{1,9}}{_TIME_UNIT}){{2,8}}")
_ABSOLUTE_PATH = re.compile(r"/[A-Za-z0-9._+@%=,/-]*")
_CIPHERS = re.compile(r"[A-Za-z0-9:+!@_=.-]+")
PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def port(value):
    """A TCP port alone (HAProxy's bind, PostgreSQL's port)."""
    return None if _PORT.fullmatch(str(value)) and 1 <= int(str(value)) <= 65535 else "write a TCP port (1-65535)"


def _port_problem(text):
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        return f"port {text!r} is not a TCP port (1-65535)"
    return None


def _host_problem(text):
    if text.startswith("[") and text.endswith("]"):
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            return f"{text!r} is not an IPv6 address in brackets"
        return None
    if len(text) > 253 or not _HOST_NAME.fullmatch(text):
        return f"{text!r} is not a host name or IP address"
    return None


def _host_and_port(text, port_required):
    """'host:port', '[v6]:port' or (port_required false) 'host' -> the problem, or None."""
    host, sep, port = text.rpartition(":")
    if not sep or host.endswith(":") or (not host.startswith("[") and ":" in host):  # a bare IPv6 address without brackets
        if port_required:
            return f"{text!r} has no port; write host:port ([address]:port for IPv6)"
        return _host_problem(text)
    return _host_problem(host) or _port_problem(port)


def listen(value):
    """listen: a port, or address:port (IPv6 in brackets, '*' for every address)."""
    text = str(value)
    if _PORT.fullmatch(text):
        return _port_problem(text)
    host, sep, port = text.rpartition(":")
    if sep and host == "*":
        return _port_problem(port)
    if _host_and_port(text, port_required=True):
        return "write a port (8443) or address:port (127.0.0.1:9001, [::1]:9001)"
    return None


def server_names(value):
    """server_name: one or more names separated by spaces (a leading '*.' or trailing '.*' wildcard)."""
    names = str(value).split(" ")
    if not all(_SERVER_NAME.fullmatch(name) for name in names):
        return "write host names separated by single spaces (wildcards *.example.com or www.example.*); no regular expressions"
    return None


def url(value):
    """proxy_pass: http(s)://host[:port][/path], no variables."""
    match = re.fullmatch(r"(https?)://([^/]*)(.*)", str(value), re.S)
    if not match:
        return "write http://host[:port][/path] or https://..."
    authority, path = match.group(2), match.group(3)
    if _host_and_port(authority, port_required=False):
        return "write http://host[:port][/path] or https://... with a host name or address and a port of 1-65535"
    if path and not _URL_PATH.fullmatch(path):
        return "the path may hold letters, digits and . _ ~ ! & ( ) * + , = : @ % / - only (percent-encode the rest; no variables)"
    return None


def location_path(value):
    """location: a URI prefix."""
    if not _URL_PATH.fullmatch(str(value)):
        return "write a URI prefix that starts with '/' and holds letters, digits and . _ ~ ! & ( ) * + , = : @ % / - only"
    return None


def upstream_server(value):
    """upstream server: host[:port]."""
    if _host_and_port(str(value), port_required=False):
        return "write host:port (a host name or address, and a port of 1-65535)"
    return None


def host_name(value):
    """proxy_ssl_name: the name the upstream's certificate must carry."""
    if _host_problem(str(value)):
        return "write the DNS name (or IP address) in the upstream servers' certificates"
    return None


def duration(value):
    """A time: 30s, 500ms, 1m30s, or a number of seconds."""
    if not _TIME.fullmatch(str(value)):
        return "write a time such as 3s, 500ms or 1m30s"
    return None


def absolute_path(value):
    """A file or directory the configuration names."""
    if not _ABSOLUTE_PATH.fullmatch(str(value)):
        return "write an absolute path of letters, digits and . _ + @ % = , / - (no spaces or quotes)"
    return None


def access_log(value):
    return None if str(value) == "off" else absolute_path(value)


def protocols(value):
    if not isinstance(value, list) or not value or any(p not in PROTOCOLS for p in value):
        return f"list one or more of {', '.join(PROTOCOLS)}"
    return None


def ciphers(value):
    if not _CIPHERS.fullmatch(str(value)):
        return "write an OpenSSL cipher list: names separated by ':' (letters, digits and + ! @ _ = . - only)"
    return None


def verify_depth(value):
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,3}", str(value)) or not 1 <= int(str(value)) <= 100:
        return "write a whole number from 1 to 100 (2 for a leaf and an intermediate)"
    return None
