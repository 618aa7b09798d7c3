# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private key encrypted as PKCS#8 with a passphrase, harder to guess than cryptography makes it.
No Ansible imports.

cryptography writes PKCS#8 as PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC, but at
2,048 PBKDF2 iterations, which it does not let a caller raise. This writes the same structure
(EncryptedPrivateKeyInfo, RFC 5958) with PBKDF2_ITERATIONS; cryptography and OpenSSL 3 read it
as they read their own.
"""

from __future__ import annotations

import base64
import secrets

PBKDF2_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256: about 0.15 s to try one passphrase here

# DER of the algorithm identifiers (OIDs as their encoded bytes).
_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_NULL = b"\x05\x00"


def encrypt(pkcs8_der: bytes, passphrase: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """The PEM of an unencrypted PKCS#8 DER key, encrypted under passphrase."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(pkcs8_der) + padder.finalize()) + encryptor.finalize()
    kdf = _sequence(_PBKDF2, _sequence(_octets(salt), _integer(iterations), _sequence(_HMAC_SHA256, _NULL)))
    algorithm = _sequence(_PBES2, _sequence(kdf, _sequence(_AES256_CBC, _octets(iv))))
    der = _sequence(algorithm, _octets(ciphertext))
    text = base64.b64encode(der).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED PRIVATE KEY-----\n").encode()


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _sequence(*parts: bytes) -> bytes:
    content = b"".join(parts)
    return b"\x30" + _length(len(content)) + content


def _octets(content: bytes) -> bytes:
    return b"\x04" + _length(len(content)) + content


def _integer(value: int) -> bytes:
    content = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading zero byte keeps it positive
    return b"\x02" + _length(len(content)) + content
