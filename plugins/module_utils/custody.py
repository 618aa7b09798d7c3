# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the CA's private keys live: PEM files in the CA directory, or a PKCS#11 token.

Either way every CA key has its file at the usual path (root-ca-key.pem, ...). For a token key
the file holds a reference to the token object, an RFC 7512 PKCS#11 URI, never key material.
So rollover, backup and restore move keys by moving files and never need to know which custody
holds them, and an existing CA moves into a token with a CA rollover (new keys are made where
the custody says; existing ones are read where they are).

A token key is a cryptography private-key object whose sign() asks the token: the rest of the
core signs certificates and CRLs with it unchanged. No Ansible imports.
"""

from __future__ import annotations

import os
import secrets
import traceback
from urllib.parse import quote, unquote, unquote_to_bytes

from . import pki

try:
    import pkcs11
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters
except ImportError:
    PKCS11_IMPORT_ERROR = traceback.format_exc()
else:
    PKCS11_IMPORT_ERROR = None

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:  # module_support.require_cryptography reports it
    EllipticCurvePrivateKey = object
else:
    EllipticCurvePrivateKey = ec.EllipticCurvePrivateKey

URI_SCHEME = "pkcs11:"
TOKEN_CURVES = {pki.KeyType.ECDSA_P256: "secp256r1", pki.KeyType.ECDSA_P384: "secp384r1"}
DEFAULT_KEY_LABEL = "mtls-fleet"


class CAKeys:
    """Reads CA keys wherever they are; makes new ones in the token when there is one, else as files."""

    def __init__(self, passphrase: str | None = None, token: Token | None = None):
        self.passphrase = passphrase or None
        self.token = token

    def load(self, stored: bytes, path: str):
        """The private key that the file at path holds (PEM) or names (PKCS#11 URI)."""
        uri = token_reference(stored)
        if uri is None:
            return pki.load_private_key(stored, path, self.passphrase)
        return self._token_for(uri, path).key(uri, path)

    def new(self, key_type: pki.KeyType, name: str, dry_run=False):
        """A new CA key for the CA called name: (key, what its file stores). dry_run (check mode)
        makes nothing in the token: a throwaway key stands in for the one a real run makes there."""
        if self.token is not None and key_type not in TOKEN_CURVES:
            raise pki.PKIError(f"key_type {key_type.value}: CA keys in a PKCS#11 token are "
                               f"{' or '.join(k.value for k in TOKEN_CURVES)}; choose one of them")
        if self.token is None or dry_run:
            key = key_type.generate()
            return key, pki.key_to_pem(key, self.passphrase)
        return self.token.generate(key_type, name)

    def destroy(self, stored: bytes | None, path: str) -> None:
        """Destroy the key a retired CA's file names in the token (a PEM file goes with its file)."""
        uri = token_reference(stored)
        if uri is not None:
            self._token_for(uri, path).destroy(uri, path)

    def _token_for(self, uri: str, path: str) -> Token:
        if self.token is None:
            raise pki.PKIError(f"{path} names a key in a PKCS#11 token ({uri}); give the token's options "
                               "(pkcs11: module, token_label, pin; role variable mtls_ca_pkcs11)")
        return self.token

    def close(self) -> None:
        if self.token is not None:
            self.token.close()


def token_reference(stored: bytes | None) -> str | None:
    """The PKCS#11 URI a CA key file holds instead of a key, or None for a PEM key."""
    if stored and stored.lstrip().startswith(URI_SCHEME.encode()):
        return stored.strip().decode("utf-8", "replace")
    return None


# ---------------------------------------------------------------------------------------------
# The token


def open_token(module_path: str, token_label: str, pin: str, key_label: str = DEFAULT_KEY_LABEL) -> Token:
    """A logged-in read-write session on the token labelled token_label, or a PKIError naming the fix."""
    if PKCS11_IMPORT_ERROR:
        raise pki.PKIError("the Python library python-pkcs11 is needed for CA keys in a PKCS#11 token and is not "
                           "installed on the CA host; install it: python3 -m pip install 'python-pkcs11>=0.10'")
    if not os.path.isfile(module_path):
        raise pki.PKIError(f"pkcs11.module: {module_path} does not exist; give the path of the token's PKCS#11 library "
                           "(SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)")
    try:
        library = pkcs11.lib(module_path)
    except (RuntimeError, OSError) as exc:  # python-pkcs11 raises RuntimeError for a library without C_GetFunctionList
        raise pki.PKIError(f"pkcs11.module: {module_path} is not a PKCS#11 library ({_reason(exc)}); give the path of "
                           "the token's PKCS#11 module") from None
    try:
        token = library.get_token(token_label=token_label)
    except pkcs11.exceptions.NoSuchToken:
        labels = sorted(t.label for t in library.get_tokens() if t.label)  # an uninitialised token has none
        raise pki.PKIError(f"pkcs11.token_label: {module_path} has no token labelled {token_label!r} "
                           f"(tokens there: {', '.join(map(repr, labels)) or 'none'}); initialise it or fix the label") from None
    missing = missing_mechanisms(token.slot.get_mechanisms())
    if missing:
        raise pki.PKIError(f"token {token_label!r} does not offer ECDSA ({', '.join(missing)} missing); CA keys in a "
                           "token are ECDSA P-256 or P-384: use a token that offers them")
    try:
        session = token.open(user_pin=pin, rw=True)
    except pkcs11.exceptions.UserAlreadyLoggedIn:  # login is per process: another session of ours holds it
        session = token.open(rw=True)
    except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLenRange, pkcs11.exceptions.PinInvalid):
        raise pki.PKIError(f"pkcs11.pin: the PIN for token {token_label!r} is wrong (the token locks after repeated "
                           "failures); fix the vaulted PIN") from None
    except pkcs11.exceptions.PinLocked:
        raise pki.PKIError(f"pkcs11.pin: token {token_label!r} is locked after too many wrong PINs; its security "
                           "officer must unlock it") from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise pki.PKIError(f"cannot log in to token {token_label!r}: {_reason(exc)}") from None
    return Token(session, token_label, key_label)


def missing_mechanisms(mechanisms) -> list:
    """The mechanisms a CA key in a token needs that the token lacks (names as in the PKCS#11 spec)."""
    names = {getattr(m, "name", str(m)) for m in mechanisms}
    return [f"CKM_{name}" for name in ("EC_KEY_PAIR_GEN", "ECDSA") if name not in names]


class Token:
    def __init__(self, session, label: str, key_label: str):
        self.session, self.label, self.key_label = session, label, key_label

    def generate(self, key_type: pki.KeyType, name: str):
        """A new key pair in the token, sensitive and never extractable: (TokenKey, its URI as bytes)."""
        label, key_id = f"{self.key_label} {name}", secrets.token_bytes(16)
        parameters = self.session.create_domain_parameters(
            pkcs11.KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(TOKEN_CURVES[key_type])}, local=True)
        public, private = parameters.generate_keypair(
            store=True, label=label, id=key_id,
            public_template={Attribute.VERIFY: True},
            # Signing only: no key derivation with it, no copy of it, and no attribute changed later.
            private_template={Attribute.SIGN: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                              Attribute.PRIVATE: True, Attribute.DERIVE: False, Attribute.COPYABLE: False, Attribute.MODIFIABLE: False},
        )
        uri = (f"{URI_SCHEME}token={quote(self.label, safe='')};object={quote(label, safe='')};"
               f"id={''.join(f'%{b:02x}' for b in key_id)};type=private")
        return TokenKey(private, _public_key(public), uri), (uri + "\n").encode()

    def key(self, uri: str, path: str) -> TokenKey:
        fields = parse_uri(uri, path)
        if fields.get("token") != self.label:
            raise pki.PKIError(f"{path} names a key in token {fields.get('token')!r}, but pkcs11.token_label is "
                               f"{self.label!r}; give that token's options")
        private, public = self._objects(fields, path)
        return TokenKey(private, _public_key(public), uri)

    def destroy(self, uri: str, path: str) -> None:
        try:
            objects = self._objects(parse_uri(uri, path), path)
        except pki.PKIError:
            return  # already gone
        for obj in objects:
            obj.destroy()

    def _objects(self, fields, path):
        found = []
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            try:
                found.append(self.session.get_key(object_class=object_class, label=fields.get("object"),
                                                  id=fields.get("id")))
            except pkcs11.exceptions.NoSuchKey:
                raise pki.PKIError(
                    f"token {self.label!r} holds no {object_class.name.lower().replace('_', ' ')} labelled "
                    f"{fields.get('object')!r} with the id {path} names; restore the token from its backup, or "
                    "check pkcs11.token_label"
                ) from None
        return found

    def close(self) -> None:
        self.session.close()


def parse_uri(uri: str, path: str) -> dict:
    """The attributes of an RFC 7512 PKCS#11 URI (path attributes only): {name: str, 'id': bytes}."""
    if not uri.startswith(URI_SCHEME):
        raise pki.PKIError(f"{path}: {uri!r} is not a PKCS#11 URI")
    fields = {}
    for part in uri[len(URI_SCHEME):].split("?")[0].split(";"):
        name, _equals, value = part.partition("=")
        fields[name] = unquote_to_bytes(value) if name == "id" else unquote(value)
    if not fields.get("token") or not fields.get("object"):
        raise pki.PKIError(f"{path}: the PKCS#11 URI {uri!r} names no token or object; restore the file from backup")
    return fields


class TokenKey(EllipticCurvePrivateKey):
    """An ECDSA key held in a PKCS#11 token: signs there, never leaves it.

    cryptography builds certificates and CRLs with any subclass of its private-key classes that
    implements sign() (pyca/cryptography#11616); 48 and later also copy the key.
    """

    def __init__(self, private, public_key, uri: str):
        self._private, self._public_key, self.uri = private, public_key, uri

    @property
    def curve(self):
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.curve.key_size

    def public_key(self):
        return self._public_key

    def sign(self, data: bytes, signature_algorithm) -> bytes:
        # Tokens differ in which hash-and-sign mechanisms they offer (SoftHSM2 2.6 has none for ECDSA),
        # and every one offers CKM_ECDSA over a digest: hash here, sign there.
        digest = hashes.Hash(signature_algorithm.algorithm)
        digest.update(data)
        return encode_ecdsa_signature(self._private.sign(digest.finalize(), mechanism=Mechanism.ECDSA))

    def exchange(self, algorithm, peer_public_key):
        raise pki.PKIError("a CA key in a token only signs")

    def private_numbers(self):
        raise pki.PKIError(f"the key {self.uri} stays in its token")

    def private_bytes(self, encoding, format, encryption_algorithm):  # noqa: A002 (cryptography's signature)
        raise pki.PKIError(f"the key {self.uri} stays in its token")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __eq__(self, other):
        return isinstance(other, TokenKey) and other.uri == self.uri

    def __hash__(self):
        return hash(self.uri)


def _public_key(public_object):
    return serialization.load_der_public_key(encode_ec_public_key(public_object))


def _reason(exc) -> str:
    return str(exc) or type(exc).__name__
