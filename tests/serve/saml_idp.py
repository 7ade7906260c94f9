"""A fake SAML identity provider: a key and certificate of its own, responses it signs with xmlsec.

It builds Responses the way identity providers send them (an Assertion signed on its own,
the signature right after its Issuer) and lets a test break them: tamper after signing, leave
the signature out, sign with another key, name another audience or recipient, let them
expire, or wrap the signed assertion around a forged one.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

IDP = "https://idp.example.test/metadata"
SSO = "https://idp.example.test/sso"
SP = "https://musubi.example.test/saml/metadata"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeyPair:
    key_pem: str
    cert_pem: str

    @property
    def cert_b64(self) -> str:
        """The certificate as python3-saml's settings take it (base64 DER, no PEM lines)."""
        return "".join(ln for ln in self.cert_pem.splitlines() if "CERTIFICATE" not in ln)


def make_keypair(cn: str = "fake idp") -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


def sp_settings(acs: str, idp: KeyPair, **security: object) -> dict[str, object]:
    """python3-saml settings for the SP under test, trusting ``idp``."""
    return {
        "strict": True,
        "sp": {"entityId": SP, "assertionConsumerService": {
            "url": acs, "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
            "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
        "idp": {"entityId": IDP, "singleSignOnService": {
            "url": SSO, "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
            "x509cert": idp.cert_b64},
        "security": dict(security),
    }


class FakeIdP:
    """Builds (and signs) Responses to the SP's AuthnRequests."""

    def __init__(self, keys: KeyPair | None = None) -> None:
        self.keys = keys or make_keypair()

    def assertion(self, name_id: str, acs: str, in_response_to: str, *, audience: str = SP,
                  recipient: str | None = None, lifetime: timedelta = timedelta(minutes=5),
                  shift: timedelta = timedelta(0), assertion_id: str | None = None,
                  attributes: dict[str, list[str]] | None = None) -> str:
        now = datetime.now(UTC) + shift
        attrs = "".join(
            f'<saml:Attribute Name="{name}">'
            + "".join(f"<saml:AttributeValue>{v}</saml:AttributeValue>" for v in values) + "</saml:Attribute>"
            for name, values in (attributes or {}).items())
        exp = _ts(now + lifetime)
        aid = assertion_id or "_a" + secrets.token_hex(16)
        return (
            f'<saml:Assertion xmlns:saml="{NS["saml"]}" ID="{aid}" Version="2.0" IssueInstant="{_ts(now)}">'
            f"<saml:Issuer>{IDP}</saml:Issuer>"
            f"<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">"
            f"{name_id}</saml:NameID>"
            f'<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData NotOnOrAfter="{exp}" Recipient="{recipient or acs}" '
            f'InResponseTo="{in_response_to}"/></saml:SubjectConfirmation></saml:Subject>'
            f'<saml:Conditions NotBefore="{_ts(now - timedelta(minutes=1))}" NotOnOrAfter="{exp}">'
            f"<saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>"
            f"</saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{_ts(now)}" SessionIndex="_s{secrets.token_hex(8)}">'
            f"<saml:AuthnContext><saml:AuthnContextClassRef>"
            f"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>"
            f"</saml:AuthnContext></saml:AuthnStatement>"
            + (f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement>" if attrs else "")
            + "</saml:Assertion>"
        )

    def sign(self, xml: str, keys: KeyPair | None = None) -> str:
        """``xml``'s root signed (enveloped, exclusive c14n, RSA-SHA256), the signature after its Issuer."""
        k = keys or self.keys
        signed = OneLogin_Saml2_Utils.add_sign(xml, k.key_pem, k.cert_pem)
        return signed.decode() if isinstance(signed, bytes) else str(signed)

    def response(self, assertion_xml: str, acs: str, in_response_to: str) -> str:
        now = _ts(datetime.now(UTC))
        return (
            f'<samlp:Response xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" ID="_r{secrets.token_hex(16)}" '
            f'Version="2.0" IssueInstant="{now}" Destination="{acs}" InResponseTo="{in_response_to}">'
            f"<saml:Issuer>{IDP}</saml:Issuer>"
            f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f"{_body(assertion_xml)}</samlp:Response>"
        )

    def signed_response(self, name_id: str, acs: str, in_response_to: str, **kw: object) -> str:
        """The well-formed, signed answer (base64, as the browser posts it)."""
        a = self.sign(self.assertion(name_id, acs, in_response_to, **kw))  # type: ignore[arg-type]
        return b64(self.response(a, acs, in_response_to))

    def wrapped(self, victim_signed_assertion: str, evil_name_id: str, acs: str, in_response_to: str) -> str:
        """Signature wrapping (XSW): the genuinely signed assertion hidden in the evil one's Signature
        Object, the evil assertion (same ID moved to the original, evil one unsigned in front) processed."""
        signed = etree.fromstring(victim_signed_assertion.encode())
        evil = etree.fromstring(self.assertion(evil_name_id, acs, in_response_to).encode())
        evil.set("ID", signed.get("ID"))
        sig = copy_of(signed.find("ds:Signature", NS))
        obj = etree.SubElement(sig, f"{{{NS['ds']}}}Object")
        original = copy_of(signed)
        original.remove(original.find("ds:Signature", NS))
        obj.append(original)
        evil.find("saml:Issuer", NS).addnext(sig)
        return b64(self.response(etree.tostring(evil).decode(), acs, in_response_to))

    def wrapped_beside(self, victim_signed_assertion: str, evil_name_id: str, acs: str, in_response_to: str) -> str:
        """XSW with two assertions: a forged unsigned one first, the genuine signed one after it."""
        evil = self.assertion(evil_name_id, acs, in_response_to)
        return b64(self.response(evil + _body(victim_signed_assertion), acs, in_response_to))


def copy_of(el: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(el))


def _body(xml: str) -> str:
    return xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()
