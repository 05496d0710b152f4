"""A throw-away PKI for TLS tests: a CA, server and client certificates (ECDSA P-256)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificate(subject: str, key, issuer=None, issuer_key=None, ca: bool = False, days: int = 1):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(path: Path, cert=None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    path.chmod(0o644)  # a broker that dropped root must still read it
    return path


def new_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Pki:
    """A CA in ``folder`` issuing certificates as ``<name>.pem`` and ``<name>.key``."""

    folder: Path

    def __post_init__(self) -> None:
        self.key = new_key()
        self.cert = certificate(f"lockerd test CA {self.folder.name}", self.key, ca=True)
        self.ca_file = pem(self.folder / "ca.pem", cert=self.cert)

    def issue(self, name: str, key: Any = None) -> tuple[Path, Path]:
        key = key or new_key()
        cert = certificate(name, key, self.cert, self.key)
        cert_file = pem(self.folder / f"{name}.pem", cert=cert)
        return cert_file, pem(self.folder / f"{name}.key", key=key)
