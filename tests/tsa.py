"""A time-stamping authority for tests (RFC 3161), answering through the loopback server.

Its certificates are made here with ``cryptography`` (a root CA and a TSA certificate with the
critical id-kp-timeStamping usage RFC 3161 requires); its answers are built with asn1crypto's
TSP and CMS types and signed with the TSA's key. legation reads them with rfc3161-client, as it
reads a public TSA's; nothing here is legation's code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY = "1.3.6.1.4.1.99999.1"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool, stamping: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    if stamping:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class TestTSA:
    """Signs what it is asked; ``down`` makes it answer 503; ``requests`` counts the asks."""

    name: str = "Loopback Test TSA"
    down: bool = False
    requests: int = 0
    root_key: rsa.RSAPrivateKey = field(init=False)
    root: x509.Certificate = field(init=False)
    key: ec.EllipticCurvePrivateKey = field(init=False)
    certificate: x509.Certificate = field(init=False)
    serial: int = 0

    def __post_init__(self) -> None:
        self.root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.root = _certificate(f"{self.name} Root", self.root_key, f"{self.name} Root", self.root_key,
                                 ca=True, stamping=False)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _certificate(self.name, self.key, f"{self.name} Root", self.root_key,
                                        ca=False, stamping=True)

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """A FakeSite's dynamic handler: POST a TimeStampReq, get a TimeStampResp."""
        if method != "POST":
            return None
        self.requests += 1
        if self.down:
            return 503, {"Content-Type": "text/plain"}, b"down for maintenance"
        return 200, {"Content-Type": "application/timestamp-reply"}, self.respond(body)

    def respond(self, request_der: bytes, gen_time: dt.datetime | None = None) -> bytes:
        request = tsp.TimeStampReq.load(request_der)
        self.serial += 1
        info = tsp.TSTInfo({
            "version": "v1",
            "policy": POLICY,
            "message_imprint": request["message_imprint"],
            "serial_number": self.serial,
            "gen_time": (gen_time or dt.datetime.now(dt.UTC)).replace(microsecond=0),
            "accuracy": {"seconds": 1},
            "nonce": request["nonce"].native,
        })
        return tsp.TimeStampResp({"status": {"status": "granted"},
                                  "time_stamp_token": self._signed(info)}).dump()

    def _signed(self, info: tsp.TSTInfo) -> cms.ContentInfo:
        content = info.dump()
        cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
        cert = asn1_x509.Certificate.load(cert_der)
        attributes = cms.CMSAttributes([
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
            {"type": "signing_certificate_v2", "values": [{"certs": [{
                "hash_algorithm": {"algorithm": "sha256"},
                "cert_hash": hashlib.sha256(cert_der).digest(),
                "issuer_serial": {"issuer": [asn1_x509.GeneralName({"directory_name": cert.issuer})],
                                  "serial_number": cert.serial_number},
            }]}]},
        ])
        signature = self.key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": {
                "issuer": cert.issuer, "serial_number": cert.serial_number}}),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": attributes,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        })
        signed = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
            "certificates": [cert],
            "signer_infos": [signer],
        })
        return cms.ContentInfo({"content_type": "signed_data", "content": signed})


__all__ = ["TestTSA"]
