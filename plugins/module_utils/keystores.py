# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The other shapes a service's generation can hold besides key.pem, cert.pem and ca-bundle.pem,
for servers that read no separate PEM files. No Ansible imports.

- ``haproxy``: combined.pem, the chain then the key in one file (what HAProxy's ``crt`` loads).
- ``pkcs12``: keystore.p12 (the key and chain, under the password in keystore.pass) and
  truststore.p12 (every CA of the bundle as a trusted certificate), for Java.

They are written in the same generation as the PEM files, so they switch with them in one rename
and a rollback brings them back together.
"""

from __future__ import annotations

import secrets

from . import pki

COMBINED_FILE = "combined.pem"
KEYSTORE_FILE, TRUSTSTORE_FILE, PASSWORD_FILE = "keystore.p12", "truststore.p12", "keystore.pass"
FORMATS = ("haproxy", "pkcs12")
ALIAS = "mtls"

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:  # reported by pki's requirement check
    pass

# PKCS#12 (RFC 7292) and the attribute Java reads to take a certificate as trusted
# (its keytool writes it; certificates without it are not trust anchors to Java).
_DATA = "1.2.840.113549.1.7.1"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
_JAVA_TRUSTED_KEY_USAGE = "2.16.840.1.113894.746875.1.1"
_ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"


def combined(key_pem: bytes, chain_pem: bytes) -> bytes:
    """HAProxy's crt file: the certificate chain, then its key."""
    return chain_pem.rstrip(b"\n") + b"\n" + key_pem


def keystore(key_pem: bytes, chain_pem: bytes, kept: bytes | None = None, kept_password: bytes | None = None) -> tuple:
    """(keystore.p12, keystore.pass) for this key and chain.

    PKCS#12 encryption is salted, so a new keystore differs from the last even for the same key:
    the kept one (and its password) is returned when it holds this key and chain, and a re-run
    writes nothing.
    """
    key = pki.load_private_key(key_pem, "private_key")
    chain = pki.load_certificates(chain_pem, "certificate")
    if kept is not None and kept_password is not None and _holds(kept, kept_password.strip(), key, chain):
        return kept, kept_password
    password = secrets.token_urlsafe(24).encode()
    data = pkcs12.serialize_key_and_certificates(ALIAS.encode(), key, chain[0], chain[1:] or None,
                                                 serialization.BestAvailableEncryption(password))
    return data, password + b"\n"


def _holds(data, password, key, chain) -> bool:
    try:
        found_key, found_cert, found_cas = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        return False
    if found_key is None or found_cert is None or pki.key_mismatch(chain[0], found_key):
        return False
    der = serialization.Encoding.DER
    return [c.public_bytes(der) for c in [found_cert] + list(found_cas or [])] == [c.public_bytes(der) for c in chain] and \
        _private_der(found_key) == _private_der(key)


def _private_der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def truststore(bundle_pem: bytes) -> bytes:
    """Every certificate of the bundle as a Java trusted-certificate entry (alias ``ca-N``).

    It holds public certificates only, so it is neither encrypted nor MACed: Java opens it with any
    store password, or none, and the same bundle always gives the same bytes. (The cryptography
    library cannot mark certificates trusted for Java before version 45.)
    """
    bags = []
    for number, certificate in enumerate(pki.load_certificates(bundle_pem, "ca_bundle"), 1):
        der = certificate.public_bytes(serialization.Encoding.DER)
        cert_bag = _seq(_oid(_X509_CERTIFICATE), _explicit(0, _tlv(0x04, der)))
        attributes = _tlv(0x31, b"".join(sorted([
            _seq(_oid(_FRIENDLY_NAME), _tlv(0x31, _tlv(0x1E, f"ca-{number}".encode("utf-16-be")))),
            _seq(_oid(_JAVA_TRUSTED_KEY_USAGE), _tlv(0x31, _oid(_ANY_EXTENDED_KEY_USAGE))),
        ])))
        bags.append(_seq(_oid(_CERT_BAG), _explicit(0, cert_bag), attributes))
    safe_contents = _seq(*bags)
    authenticated_safe = _seq(_seq(_oid(_DATA), _explicit(0, _tlv(0x04, safe_contents))))
    return _seq(_tlv(0x02, b"\x03"), _seq(_oid(_DATA), _explicit(0, _tlv(0x04, authenticated_safe))))


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _explicit(number: int, content: bytes) -> bytes:
    return _tlv(0xA0 | number, content)


def _oid(dotted: str) -> bytes:
    numbers = [int(part) for part in dotted.split(".")]
    body = bytes([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, body)
