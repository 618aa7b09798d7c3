# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure PKI logic: keys, CA and leaf certificates, issuance policy, the renewal verdict.

No Ansible imports and no file I/O: everything takes and returns objects or bytes, and every
time-dependent function takes ``now`` so tests drive the clock. Runs on cryptography >= 38
(Debian 12's python3-cryptography), because certificate_info and csr run on managed hosts.
"""

from __future__ import annotations

import datetime
import enum
import functools
import ipaddress
import re
import traceback
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import pkcs8

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # reported by each module through missing_required_lib
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

CLOCK_SKEW = datetime.timedelta(minutes=5)
DEFAULT_LEAF_LIFETIME = "90d"
DEFAULT_RENEW_BEFORE = "33%"


class PKIError(Exception):
    """A problem with the input or with existing material, worded for the person who fixes it."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class KeyType(str, enum.Enum):
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @classmethod
    def parse(cls, value, field="key_type") -> KeyType:
        return parse_member(cls, str(value).lower(), field, "key type")

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa-")

    def generate(self):
        if self is KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.generate()
        if self.is_rsa:
            return rsa.generate_private_key(public_exponent=65537, key_size=int(self.value[4:]))
        curve = ec.SECP256R1() if self is KeyType.ECDSA_P256 else ec.SECP384R1()
        return ec.generate_private_key(curve)

    @classmethod
    def of(cls, key) -> KeyType | None:
        """The key type of a private or public key, or None for one we do not issue."""
        if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
            return cls.ED25519
        if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            return _lookup(cls, f"rsa-{key.key_size}")
        if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
            return _lookup(cls, {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, ""))
        return None

    def signature_hash(self):
        if self is KeyType.ED25519:
            return None
        return hashes.SHA384() if self is KeyType.ECDSA_P384 else hashes.SHA256()


def parse_member(enum_cls, value, field, what):
    """The member of enum_cls with this value, or a PKIError naming the field and the choices."""
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_cls)
        raise PKIError(f"{field}: unknown {what} {value!r}; use one of {choices}") from None


def _lookup(enum_cls, value):
    try:
        return enum_cls(value)
    except ValueError:
        return None


class Profile(str, enum.Enum):
    SERVER = "server"
    CLIENT = "client"
    SERVICE = "service"  # both: an mTLS peer that serves and calls

    @classmethod
    def parse(cls, value, field="profile") -> Profile:
        return parse_member(cls, str(value).lower(), field, "profile")

    def usages(self) -> list:
        return {
            Profile.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
            Profile.CLIENT: [ExtendedKeyUsageOID.CLIENT_AUTH],
            Profile.SERVICE: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        }[self]

    @classmethod
    def of(cls, cert) -> Profile | None:
        try:
            usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            return None
        for profile in cls:
            if set(profile.usages()) == usages:
                return profile
        return None


# ---------------------------------------------------------------------------------------------
# Durations

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a certificate's name: a directory in the CA store
MAX_DURATION = datetime.timedelta(days=36525)  # beyond it, dates overflow long before anything is useful
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value, field) -> datetime.timedelta:
    """'90d', '12h', '30m', '45s', '2w', or a number of seconds (int or digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DURATION.total_seconds():
        return datetime.timedelta(seconds=value)
    match = _DURATION.fullmatch(str(value))
    if not match or int(match.group(1)) == 0:
        raise PKIError(f"{field}: {value!r} is not a duration; write e.g. '90d', '12h', '30m' or seconds")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise PKIError(f"{field}: {value!r} is more than 100 years; write e.g. '90d' for a service or '3650d' for a CA")
    return datetime.timedelta(seconds=seconds)


@dataclass(frozen=True)
class RenewBefore:
    """When a certificate is due: a fixed time before expiry, or a fraction of its lifetime."""

    fraction: float | None = None
    period: datetime.timedelta | None = None

    @classmethod
    def parse(cls, value, field="renew_before") -> RenewBefore:
        text = str(value).strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = -1.0
            if not 0 < percent < 100:
                raise PKIError(f"{field}: {value!r} must be a percentage between 0% and 100%, e.g. '33%'")
            return cls(fraction=percent / 100)
        return cls(period=parse_duration(value, field))

    def window(self, lifetime: datetime.timedelta) -> datetime.timedelta:
        return self.period if self.period is not None else lifetime * self.fraction


# ---------------------------------------------------------------------------------------------
# Subject alternative names

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def parse_san(entry, field="subject_alt_name"):
    """'DNS:name', 'IP:address' or 'URI:scheme://...' -> x509.GeneralName."""
    kind, sep, value = str(entry).partition(":")
    kind = kind.strip().upper()
    if not sep or kind not in ("DNS", "IP", "URI"):
        raise PKIError(f"{field}: {entry!r} has no type prefix; write 'DNS:{entry}', 'IP:{entry}' or 'URI:{entry}'")
    value = value.strip()
    if kind == "DNS":
        name = value.lower().rstrip(".")
        labels = name.split(".")
        if labels[0] == "*":
            labels = labels[1:]
            if len(labels) < 2:  # *.com would match every name under a top-level domain
                raise PKIError(f"{field}: {entry!r} is a wildcard over a whole top-level domain; write e.g. 'DNS:*.svc.example.com'")
        if not name or len(name) > 253 or not labels or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise PKIError(f"{field}: {entry!r} is not a valid DNS name; use letters, digits, '-' and '.' only")
        if _is_ip_address(name):  # clients that dial an address look for an IP entry, never a DNS one
            raise PKIError(f"{field}: {entry!r} is an IP address, not a DNS name; write 'IP:{name}'")
        return x509.DNSName(name)
    if kind == "IP":
        if "%" in value:
            raise PKIError(f"{field}: {entry!r} has a scope ({value[value.index('%'):]}), which a certificate cannot hold; "
                           f"write 'IP:{value[:value.index('%')]}'")
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise PKIError(f"{field}: {entry!r} is not an IP address; write e.g. 'IP:10.0.0.5' or 'IP:fd00::5'") from None
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced [ or ] in the authority
        parts = None
    if not parts or not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() or _is_control(c) for c in value):
        raise PKIError(f"{field}: {entry!r} is not a URI; write e.g. 'URI:spiffe://example.org/web'")
    if not value.isascii():
        raise PKIError(f"{field}: {entry!r} holds characters outside ASCII; write the host as its A-label (xn--...) "
                       "and percent-encode the rest (%C3%A4 for an a-umlaut)")
    return x509.UniformResourceIdentifier(value)


def _is_ip_address(text) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def san_text(name) -> str:
    """The canonical 'DNS:x' / 'IP:x' / 'URI:x' form of a GeneralName."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    return f"{type(name).__name__}:{name.value}"


def sans_of(cert) -> tuple[str, ...]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(sorted(san_text(n) for n in names))


# ---------------------------------------------------------------------------------------------
# Name constraints and issuance policy


@dataclass(frozen=True)
class NameConstraints:
    """Permitted subtrees: DNS domains (with subdomains), IP networks, URI hosts."""

    dns: tuple[str, ...] = ()
    ips: tuple = ()
    uris: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw, field="name_constraints") -> NameConstraints:
        raw = raw or {}
        unknown = set(raw) - {"dns", "ips", "uris"}
        if unknown:
            raise PKIError(f"{field}: unknown key(s) {', '.join(sorted(unknown))}; use dns, ips and uris")
        dns = tuple(str(parse_san(f"DNS:{d.lstrip('.')}", f"{field}.dns").value) for d in raw.get("dns") or ())
        uris = tuple(str(u).lower() for u in raw.get("uris") or ())
        return cls(dns=dns, ips=_networks(raw.get("ips"), f"{field}.ips"), uris=uris)

    def __bool__(self):
        return bool(self.dns or self.ips or self.uris)

    def extension(self):
        subtrees = [x509.DNSName(d) for d in self.dns]
        subtrees += [x509.IPAddress(n) for n in self.ips]
        subtrees += [x509.UniformResourceIdentifier(u) for u in self.uris]
        return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None)

    @classmethod
    def of(cls, cert) -> NameConstraints:
        try:
            ext = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            return cls()
        permitted = ext.permitted_subtrees or []
        return cls(
            dns=tuple(n.value for n in permitted if isinstance(n, x509.DNSName)),
            ips=tuple(n.value for n in permitted if isinstance(n, x509.IPAddress)),
            uris=tuple(n.value for n in permitted if isinstance(n, x509.UniformResourceIdentifier)),
        )

    def permits(self, name) -> bool:
        """RFC 5280 4.2.1.10: a name type with no permitted subtree is unconstrained."""
        if isinstance(name, x509.DNSName):
            return not self.dns or any(name.value == d or name.value.endswith("." + d) for d in self.dns)
        if isinstance(name, x509.IPAddress):
            return not self.ips or any(name.value in net for net in self.ips if net.version == name.value.version)
        if isinstance(name, x509.UniformResourceIdentifier):
            host = (urlsplit(name.value).hostname or "").lower()
            return not self.uris or any(host == c or (c.startswith(".") and host.endswith(c)) for c in self.uris)
        return False


def _networks(values, field) -> tuple:
    networks = []
    for value in values or ():
        try:
            networks.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            raise PKIError(f"{field}: {value!r} is not an IP network; write e.g. '10.0.0.0/8'") from None
    return tuple(networks)


@dataclass(frozen=True)
class Policy:
    """What this CA agrees to sign, whatever a request asks. Empty lists allow any name."""

    allowed_dns: tuple[str, ...] = ()  # 'svc.example.com' (exact) or '*.example.com' (any subdomain)
    allowed_ips: tuple = ()
    allowed_uris: tuple[str, ...] = ()  # prefixes, e.g. 'spiffe://example.org/'
    max_lifetime: datetime.timedelta | None = None

    @classmethod
    def parse(cls, raw, field="policy") -> Policy:
        raw = raw or {}
        unknown = set(raw) - {"allowed_dns", "allowed_ips", "allowed_uris", "max_lifetime"}
        if unknown:
            raise PKIError(f"{field}: unknown key(s) {', '.join(sorted(unknown))}; use allowed_dns, allowed_ips, allowed_uris and max_lifetime")
        max_lifetime = raw.get("max_lifetime")
        return cls(
            allowed_dns=tuple(str(p).lower() for p in raw.get("allowed_dns") or ()),
            allowed_ips=_networks(raw.get("allowed_ips"), f"{field}.allowed_ips"),
            allowed_uris=tuple(str(p) for p in raw.get("allowed_uris") or ()),
            max_lifetime=parse_duration(max_lifetime, f"{field}.max_lifetime") if max_lifetime else None,
        )

    def violations(self, spec, issuer, now) -> list[str]:
        """Every rule spec breaks when issuer signs it at now: name constraints, this policy, CA expiry."""
        problems, constraints = [], issuer.constraints
        for text in spec.sans:
            name = parse_san(text)
            if not constraints.permits(name):
                problems.append(f"subject_alt_name: {text} is outside the CA's name constraints {_constraints_text(constraints)}")
            elif not self._allows(name):
                problems.append(f"subject_alt_name: {text} is not allowed by policy.{self._rule_for(name)}")
        if self.max_lifetime and spec.lifetime > self.max_lifetime:
            problems.append(f"lifetime: {_days(spec.lifetime)} exceeds policy.max_lifetime {_days(self.max_lifetime)}")
        ca_expiry = not_after(issuer.cert)
        if now + spec.lifetime > ca_expiry:
            problems.append(
                f"lifetime: {_days(spec.lifetime)} would outlive the issuing CA (valid until {ca_expiry:%Y-%m-%d}); "
                "shorten lifetime or roll the CA over"
            )
        return problems

    def _allows(self, name) -> bool:
        if isinstance(name, x509.DNSName):
            return not self.allowed_dns or any(
                name.value == p or (p.startswith("*.") and name.value.endswith(p[1:])) for p in self.allowed_dns
            )
        if isinstance(name, x509.IPAddress):
            return not self.allowed_ips or any(name.value in n for n in self.allowed_ips if n.version == name.value.version)
        return not self.allowed_uris or any(name.value.startswith(p) for p in self.allowed_uris)

    @staticmethod
    def _rule_for(name) -> str:
        if isinstance(name, x509.DNSName):
            return "allowed_dns"
        return "allowed_ips" if isinstance(name, x509.IPAddress) else "allowed_uris"


def _constraints_text(c: NameConstraints) -> str:
    return "(" + ", ".join([*c.dns, *(str(n) for n in c.ips), *c.uris]) + ")"


def _days(delta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g}d" if days >= 1 else f"{int(delta.total_seconds())}s"


# ---------------------------------------------------------------------------------------------
# Keys, certificates and PEM


def key_to_pem(key, passphrase: str | None = None) -> bytes:
    """PKCS#8 PEM; with a passphrase, encrypted with PBKDF2 at pkcs8.PBKDF2_ITERATIONS (cryptography's own uses 2,048)."""
    if not passphrase:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pkcs8.encrypt(der, passphrase.encode())


def load_private_key(pem: bytes, what: str, passphrase: str | None = None):
    try:
        return serialization.load_pem_private_key(pem, password=passphrase.encode() if passphrase else None)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise PKIError(f"{what} is not encrypted but a passphrase was given; drop the passphrase") from None
        raise PKIError(f"{what} is encrypted; give its passphrase") from None
    except ValueError:
        if passphrase:
            raise PKIError(f"{what} cannot be read with the given passphrase: wrong passphrase or corrupt file") from None
        raise PKIError(f"{what} is not a readable PEM private key (corrupt or wrong format)") from None


def cert_to_pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)


def load_public_key(pem: bytes, what: str):
    try:
        return serialization.load_pem_public_key(pem)
    except ValueError:
        raise PKIError(f"{what} is not a readable PEM public key") from None


def load_certificates(pem: bytes, what: str) -> list:
    """Every certificate in a PEM file, in file order; a PKIError if there is none or one is corrupt."""
    blocks = _PEM_CERT.findall(pem or b"")
    if not blocks:
        raise PKIError(f"{what} holds no PEM certificate")
    try:
        return [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError:
        raise PKIError(f"{what} holds a corrupt certificate") from None


def chain_to_pem(certs) -> bytes:
    return b"".join(cert_to_pem(c) for c in certs)


def load_csr(pem: bytes, what: str):
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise PKIError(f"{what} is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise PKIError(f"{what}: the CSR's signature does not verify; create it again on the host")
    try:
        if csr.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise PKIError(f"{what}: the CSR asks for CA:TRUE; this CA issues leaf certificates only")
    except x509.ExtensionNotFound:
        pass
    if KeyType.of(csr.public_key()) is None:
        raise PKIError(f"{what}: the CSR's key type is not supported; use one of {', '.join(k.value for k in KeyType)}")
    return csr


def make_csr(key, common_name: str) -> bytes:
    """A CSR carrying only the key and a name; the CA decides everything else."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
    return builder.sign(key, KeyType.of(key).signature_hash()).public_bytes(serialization.Encoding.PEM)


def public_bytes(key) -> bytes:
    if hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def not_before(cert) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def not_after(cert) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def serial_text(cert) -> str:
    """Upper-case hex, as openssl and nginx's $ssl_client_serial print it."""
    return f"{cert.serial_number:X}"


def fingerprint(cert) -> str:
    return ":".join(map("{:02X}".format, cert.fingerprint(hashes.SHA256())))


def key_identifier(cert) -> str:
    """The subject key identifier (hex): the CA a leaf's authority key identifier points to."""
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def common_name_of(cert) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else ""


@functools.lru_cache(maxsize=4096)
def signed_by(cert, issuer) -> bool:
    """Whether issuer's key made cert's signature (works back to cryptography 38).

    Remembered per (cert, issuer) pair (certificates compare and hash by their DER): a verdict
    checks a leaf's signature more than once, and every leaf's chain shares the same CAs."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def sign_data(key, data: bytes) -> bytes:
    """A signature over data with a CA key (file or token), in the hash its certificates use."""
    key_type = KeyType.of(key)
    if key_type is KeyType.ED25519:
        return key.sign(data)
    if key_type.is_rsa:
        return key.sign(data, padding.PKCS1v15(), key_type.signature_hash())
    return key.sign(data, ec.ECDSA(key_type.signature_hash()))


def verify_data(cert, signature: bytes, data: bytes) -> bool:
    """Whether the key of cert made signature over data (as sign_data makes it)."""
    key = cert.public_key()
    key_type = KeyType.of(key)
    try:
        if key_type is KeyType.ED25519:
            key.verify(signature, data)
        elif key_type is not None and key_type.is_rsa:
            key.verify(signature, data, padding.PKCS1v15(), key_type.signature_hash())
        elif key_type is not None:
            key.verify(signature, data, ec.ECDSA(key_type.signature_hash()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def chain_problem(leaf, intermediates, roots, now) -> str | None:
    """Why leaf does not chain to one of roots through intermediates at time now, or None."""
    current, pool = leaf, list(intermediates)
    while True:
        for root in roots:
            if signed_by(current, root):
                if not not_before(root) <= now <= not_after(root):
                    return f"its root CA '{common_name_of(root)}' is not valid now"
                return None
        issuer = next((c for c in pool if signed_by(current, c)), None)
        if issuer is None:
            break
        if not not_before(issuer) <= now <= not_after(issuer):
            return f"its intermediate CA '{common_name_of(issuer)}' is not valid now"
        pool.remove(issuer)
        current = issuer
    return f"not issued by the current CA (issuer: {current.issuer.rfc4514_string()})"


# ---------------------------------------------------------------------------------------------
# Building certificates


_IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_identity(common_name: str) -> str:
    """A leaf's common name is its identity: nginx allow-lists match it in the subject DN, so it
    holds no character the DN escapes or separates with (',', '+', '=', '\\', quotes, spaces)."""
    if not _IDENTITY.fullmatch(str(common_name)):
        raise PKIError(f"common_name: {common_name!r} is not an identity nginx allow-lists can match; use 1 to 64 letters, "
                       "digits, '.', '_' and '-', starting with a letter or digit (the service name)")
    return common_name


def check_common_name(common_name: str) -> str:
    if not common_name or len(common_name) > 64:
        raise PKIError(f"common_name: {common_name!r} must be 1 to 64 characters")
    if any(_is_control(c) for c in common_name):
        raise PKIError(f"common_name: {common_name!r} holds a control character (a newline?); remove it")
    return common_name


def _is_control(char) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0


def _name(common_name: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, check_common_name(common_name))])


def _builder(subject, issuer_name, public_key, now, lifetime):
    """What every certificate shares: names, key, random serial, backdated validity, SKI."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _aki(issuer_cert):
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_ca(common_name, key, lifetime, now, path_length, constraints=None, issuer=None, issuer_key=None):
    """A root CA (self-signed) or, given issuer and issuer_key, an intermediate under it."""
    subject = _name(common_name)
    builder = _builder(subject, issuer.subject if issuer else subject, key.public_key(), now, lifetime)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ),
        critical=True,
    )
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer), critical=False)
    if constraints:
        builder = builder.add_extension(constraints.extension(), critical=True)
    signer = issuer_key or key
    return builder.sign(signer, KeyType.of(signer).signature_hash())


@dataclass(frozen=True)
class Issuer:
    """The CA that signs leaves: its certificate and key, the intermediates that go into every
    leaf's file (issuing CA first, root excluded), and the trust bundle's roots."""

    cert: object
    key: object
    chain: tuple
    roots: tuple

    @property
    def constraints(self) -> NameConstraints:
        # The innermost constrained CA: ours repeats the root's constraints on the intermediate.
        for cert in (*self.chain, *self.roots):
            constraints = NameConstraints.of(cert)
            if constraints:
                return constraints
        return NameConstraints()


@dataclass(frozen=True)
class LeafSpec:
    """What a leaf certificate must say. Built by the caller from a request, validated here."""

    name: str
    common_name: str
    sans: tuple[str, ...]
    profile: Profile = Profile.SERVICE
    key_type: KeyType = KeyType.ECDSA_P256
    lifetime: datetime.timedelta = datetime.timedelta(days=90)
    renew_before: RenewBefore = RenewBefore(fraction=0.33)

    def __post_init__(self):
        check_common_name(self.common_name)
        canonical = tuple(sorted({san_text(parse_san(s)) for s in self.sans}))
        if not canonical:
            raise PKIError("subject_alt_name: a certificate needs at least one name; add e.g. 'DNS:<host name>'")
        object.__setattr__(self, "sans", canonical)


def build_leaf(spec: LeafSpec, public_key, issuer: Issuer, now):
    """Sign spec for public_key. Callers check Policy.violations first: this signs what it is given."""
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    builder = _builder(_name(spec.common_name), issuer.cert.subject, public_key, now, spec.lifetime)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=rsa_key, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(spec.profile.usages()), critical=False)
        .add_extension(x509.SubjectAlternativeName([parse_san(s) for s in spec.sans]), critical=False)
        .add_extension(_aki(issuer.cert), critical=False)
    )
    return builder.sign(issuer.key, KeyType.of(issuer.key).signature_hash())


# ---------------------------------------------------------------------------------------------
# The renewal decision


class Reason(str, enum.Enum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    KEY_MISMATCH = "key_mismatch"
    ISSUER_CHANGED = "issuer_changed"
    SUBJECT_CHANGED = "subject_changed"
    SANS_CHANGED = "sans_changed"
    PROFILE_CHANGED = "profile_changed"
    KEY_TYPE_CHANGED = "key_type_changed"
    EXPIRED = "expired"
    RENEW_WINDOW = "renew_window"
    REVOKED = "revoked"
    FORCED = "forced"


@dataclass(frozen=True)
class Verdict:
    reason: Reason | None
    detail: str

    @property
    def renew(self) -> bool:
        return self.reason is not None


def renewal_verdict(chain, key_problem, spec: LeafSpec | None, issuer_chain, roots, renew_before, now, force=False,
                    issuing_ca=None, revoked=frozenset()):
    """The one place that decides whether a certificate must be (re)issued, and why.

    chain: the certificates of the cert file (leaf first), None if the file is missing, or a
    PKIError when it could not be read. key_problem: why the key does not fit (None if it does
    or is not checked). spec: what the cert must say (None: don't compare). roots: trust anchors
    to verify against (None: don't verify). issuing_ca: the CA that signs leaves now (None:
    any CA that chains to roots will do); during a CA rollover both CAs are trusted, but only
    the new one's leaves are current. revoked: serial numbers (int) revoked by that CA.
    Checks run from most to least serious.
    """
    if chain is None:
        return Verdict(Reason.MISSING, "no certificate yet")
    if isinstance(chain, PKIError):
        return Verdict(Reason.CORRUPT, str(chain))
    leaf = chain[0]
    if key_problem:
        return Verdict(Reason.KEY_MISMATCH, key_problem)
    if leaf.serial_number in revoked:
        return Verdict(Reason.REVOKED, f"serial {serial_text(leaf)} is revoked")
    if roots is not None:
        problem = chain_problem(leaf, [*chain[1:], *(issuer_chain or ())], roots, now)
        if problem:
            return Verdict(Reason.ISSUER_CHANGED, problem)
    if issuing_ca is not None and not signed_by(leaf, issuing_ca):
        return Verdict(Reason.ISSUER_CHANGED, f"issued by '{leaf.issuer.rfc4514_string()}'; the issuing CA is now '{common_name_of(issuing_ca)}'")
    if spec is not None:
        change = _spec_change(leaf, spec)
        if change:
            return change
    expires = not_after(leaf)
    if now >= expires:
        return Verdict(Reason.EXPIRED, f"expired {expires:%Y-%m-%d %H:%M} UTC")
    window = renew_before.window(expires - not_before(leaf))
    if now >= expires - window:
        return Verdict(Reason.RENEW_WINDOW, f"expires {expires:%Y-%m-%d %H:%M} UTC, inside renew_before ({_days(window)})")
    if force:
        return Verdict(Reason.FORCED, "renewal forced")
    return Verdict(None, f"valid until {expires:%Y-%m-%d %H:%M} UTC")


def _spec_change(leaf, spec: LeafSpec) -> Verdict | None:
    if common_name_of(leaf) != spec.common_name:
        return Verdict(Reason.SUBJECT_CHANGED, f"common name {common_name_of(leaf)!r} -> {spec.common_name!r}")
    have = sans_of(leaf)
    if have != spec.sans:
        added = sorted(set(spec.sans) - set(have))
        removed = sorted(set(have) - set(spec.sans))
        detail = "; ".join(p for p in (f"add {', '.join(added)}" if added else "", f"remove {', '.join(removed)}" if removed else "") if p)
        return Verdict(Reason.SANS_CHANGED, detail)
    profile = Profile.of(leaf)
    if profile is not spec.profile:
        return Verdict(Reason.PROFILE_CHANGED, f"profile {profile.value if profile else 'unknown'} -> {spec.profile.value}")
    key_type = KeyType.of(leaf.public_key())
    if key_type is not spec.key_type:
        return Verdict(Reason.KEY_TYPE_CHANGED, f"key type {key_type.value if key_type else 'unknown'} -> {spec.key_type.value}")
    return None


def key_mismatch(cert, key) -> str | None:
    """Why key (private, public, or a CSR's public key) does not belong to cert, or None."""
    if public_bytes(cert.public_key()) != public_bytes(key):
        return "the private key does not match the certificate"
    return None


def describe(cert, now=None) -> dict:
    """Facts about a certificate for results, diffs and reports (never key material)."""
    expires = not_after(cert)
    facts = {
        "subject": cert.subject.rfc4514_string(),
        "common_name": common_name_of(cert),
        "subject_alt_name": list(sans_of(cert)),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": serial_text(cert),
        "fingerprint_sha256": fingerprint(cert),
        "not_before": not_before(cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after_timestamp": int(expires.timestamp()),
        "key_type": getattr(KeyType.of(cert.public_key()), "value", "unknown"),
        "profile": getattr(Profile.of(cert), "value", None),
    }
    if now is not None:
        facts["days_left"] = round((expires - now).total_seconds() / 86400, 2)
    return facts


# ---------------------------------------------------------------------------------------------
# Revocation lists


class RevocationReason(str, enum.Enum):
    """RFC 5280 reason codes, spelled as cryptography's ReasonFlags."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"

    @classmethod
    def parse(cls, value, field="reason") -> RevocationReason:
        return parse_member(cls, str(value).lower().replace("-", "_"), field, "revocation reason")


@dataclass(frozen=True)
class Revoked:
    serial: int
    revoked_at: datetime.datetime
    reason: RevocationReason = RevocationReason.UNSPECIFIED


def build_crl(ca_cert, ca_key, revoked, now, lifetime: datetime.timedelta):
    """A CRL signed by ca_key listing revoked (Revoked entries of certificates that CA issued).

    The CRL number is the signing time in seconds, so every re-signed CRL has a larger one.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - CLOCK_SKEW)
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(_aki(ca_cert), critical=False)
    )
    for entry in sorted(revoked, key=lambda r: r.serial):
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(x509.ReasonFlags[entry.reason.value]), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    return builder.sign(ca_key, KeyType.of(ca_key).signature_hash())


_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----\s*", re.S)


def crl_to_pem(crl) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def load_crls(pem: bytes, what: str) -> list:
    """Every CRL in a PEM file; a PKIError if one is corrupt (an empty file holds none)."""
    try:
        return [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(pem or b"")]
    except ValueError:
        raise PKIError(f"{what} holds a corrupt CRL") from None


def crl_next_update(crl) -> datetime.datetime:
    value = getattr(crl, "next_update_utc", None)
    return value if value is not None else crl.next_update.replace(tzinfo=datetime.timezone.utc)


def crl_serials(crl) -> frozenset:
    return frozenset(entry.serial_number for entry in crl)
