"""RFC 3161 time-stamp tokens of the evidence chain, checked offline (rfc3161-client).

What a token says: a time-stamping authority signed, at its ``gen_time``, the SHA-256 of the 32
bytes of a chain record's hash. :func:`check_token` checks that the token is granted, signs that
imprint, carries a valid signature by a certificate with the time-stamping usage, and that the
certificate chains (at the token's time) to one of the given roots. It is what ``openssl ts
-verify -data <record hash bytes> -in <token> -CAfile <root>`` checks, and gives the same verdict.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from storage.models import format_timestamp

IMPRINT_HASHES = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
                  "2.16.840.1.101.3.4.2.3": "sha512"}  # legation asks for SHA-256; a token may say otherwise


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A token's time and signer as it states them; ``problem`` in words when it does not hold."""

    gen_time: str | None
    signer: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def stamped_message(record_hash: str) -> bytes:
    """What is sent to be stamped for a chain record: the 32 bytes its hex hash spells."""
    return bytes.fromhex(record_hash)


@functools.cache
def _web_roots() -> tuple[x509.Certificate, ...]:
    import certifi

    return _pem_certificates(Path(certifi.where()).read_bytes())


def _pem_certificates(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle that loads: a bundle's odd old root (a serial number
    RFC 5280 disallows, which cryptography warns of) is kept; one that does not parse is left out."""
    found = []
    for block in pem.split(b"-----END CERTIFICATE-----")[:-1]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found.append(x509.load_pem_x509_certificate(block + b"-----END CERTIFICATE-----\n"))
            except ValueError:
                continue
    return tuple(found)


def trust_roots(*ca_files: Path | None) -> tuple[x509.Certificate, ...]:
    """The roots a token's signer may chain to: the usual web roots (certifi) and ``ca_files``."""
    roots = list(_web_roots())
    for path in ca_files:
        if path is not None:
            roots += _pem_certificates(path.read_bytes())
    return tuple(dict.fromkeys(roots))  # no root twice (certificates compare by content)


def check_token(token: bytes, record_hash: str, roots: tuple[x509.Certificate, ...],
                nonce: int | None = None) -> TokenCheck:
    """Whether ``token`` (a DER TimeStampResp) time-stamps ``record_hash``, signed under ``roots``."""
    from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except (ValueError, TypeError) as exc:
        return TokenCheck(None, None, f"is not an RFC 3161 time-stamp response ({exc})")
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        text = "; ".join(response.status_string) or "no reason given"
        return TokenCheck(None, None, f"was refused by the authority (status {response.status}: {text})")
    info = response.tst_info
    gen_time, signer = format_timestamp(info.gen_time), _signer(response)
    algorithm = IMPRINT_HASHES.get(info.message_imprint.hash_algorithm.dotted_string)
    if algorithm is None:
        return TokenCheck(gen_time, signer, f"uses a hash legation does not know "
                                            f"({info.message_imprint.hash_algorithm.dotted_string})")
    if info.message_imprint.message != hashlib.new(algorithm, stamped_message(record_hash)).digest():
        return TokenCheck(gen_time, signer, "signs another hash than the chain record's (swapped or altered)")
    if nonce is not None and info.nonce != nonce:
        return TokenCheck(gen_time, signer, "answers another request (its nonce differs)")
    if not roots:
        return TokenCheck(gen_time, signer, "cannot be checked: no trusted roots were given")
    try:
        VerifierBuilder(roots=_candidates(response, roots)).build().verify_message(response, stamped_message(record_hash))
    except VerificationError as exc:
        return TokenCheck(gen_time, signer, f"does not verify: {_reason(exc)}")
    return TokenCheck(gen_time, signer)


def _candidates(response: object, roots: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    """The roots (and given intermediates) that can take part in the token's chain: those named,
    step by step, as issuer by its certificates. OpenSSL then builds and checks the chain; this only
    spares it loading a hundred and fifty web roots for each token."""
    issuers = set()
    for der in response.signed_data.certificates:  # type: ignore[attr-defined]
        try:
            issuers.add(x509.load_der_x509_certificate(der).issuer)
        except ValueError:
            continue
    chosen: list[x509.Certificate] = []
    while True:
        found = [root for root in roots if root.subject in issuers and root not in chosen]
        if not found:
            return chosen or list(roots)
        chosen += found
        issuers |= {root.issuer for root in found}


def _signer(response: object) -> str | None:
    """The subject of the certificate that signed, as the token names it."""
    signed = response.signed_data  # type: ignore[attr-defined]
    infos = list(signed.signer_infos)
    for der in signed.certificates:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        if infos and cert.issuer == infos[0].issuer and cert.serial_number == infos[0].serial_number:
            return cert.subject.rfc4514_string()
    return None


def _reason(exc: Exception) -> str:
    """rfc3161-client's reason, without OpenSSL's error stack."""
    text = str(exc)
    if "Unable to verify pkcs7 signature" in text or "certificate verify error" in text:
        return ("its signature does not chain to a trusted root (give the authority's CA in [evidence] "
                "tsa_ca, or --tsa-ca), or the token was altered")
    return text.split(": ErrorStack")[0]
