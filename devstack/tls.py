"""A private CA and a broker certificate for the local Kafka's TLS listener.

Made with the `cryptography` package (no keytool, no downloads) once per run dir and kept,
so clients that already trust the CA keep working across restarts. The broker reads them
as PEM files (`ssl.keystore.type=PEM`); clients get the CA's path in stack.env.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack.errors import os_error_to_stack_error

VALID_DAYS = 3650


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate (clients trust it) and the broker's key + chain (one PEM file)."""

    ca_cert: Path
    broker_keystore: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gwangsan local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_certificates(directory: Path, host: str) -> TlsFiles:
    """The run dir's CA and broker certificate, created if either file is missing."""
    files = TlsFiles(directory / "ca.pem", directory / "broker-keystore.pem")
    if files.ca_cert.exists() and files.broker_keystore.exists():
        return files
    try:
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        not_before, not_after = (
            now - datetime.timedelta(hours=1),
            now + datetime.timedelta(days=VALID_DAYS),
        )
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("gwangsan local CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("kafka-broker"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # The CA's key is not kept: nothing else is ever signed with it.
        _write_private(
            files.broker_keystore, key_pem + cert.public_bytes(pem) + ca_cert.public_bytes(pem)
        )
        files.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    except OSError as exc:
        raise os_error_to_stack_error(exc, directory) from None
    return files
