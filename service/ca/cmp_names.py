"""Names in CMP messages: the header's sender and recipient (GeneralName), a template's subject and issuer (Name),
read from their DER into cryptography's values and written back.

Read by hand with `cmp_asn1.split` (strict DER, every string type a Name may use), so the attribute types a client
chose are kept (cryptography re-encodes them as they came) and pyasn1 never decodes a Name.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from cryptography import x509
from cryptography.x509.name import _ASN1Type

from service.ca.cmp_der import oid_text, read_tlv, split
from service.ca.der import tlv

NULL_DN: Final = b"\xa4\x02\x30\x00"  # GeneralName directoryName of an empty Name: "I do not know who"

_STRINGS: Final[dict[int, tuple[_ASN1Type, str]]] = {
    0x0C: (_ASN1Type.UTF8String, "utf-8"),
    0x13: (_ASN1Type.PrintableString, "ascii"),
    0x16: (_ASN1Type.IA5String, "ascii"),
    0x12: (_ASN1Type.NumericString, "ascii"),
    0x1A: (_ASN1Type.VisibleString, "ascii"),
    0x14: (_ASN1Type.T61String, "latin-1"),
    0x1E: (_ASN1Type.BMPString, "utf-16-be"),
    0x1C: (_ASN1Type.UniversalString, "utf-32-be"),
}


def load_name(der: bytes) -> x509.Name:
    """A DER Name (SEQUENCE OF SET OF AttributeTypeAndValue) -> x509.Name; ValueError for anything else."""
    if not der.startswith(b"\x30"):
        raise ValueError("not a Name")
    rdns = []
    for rdn_tag, rdn in split(der):
        if rdn_tag != 0x31:
            raise ValueError("a Name holds SETs")
        attributes = []
        for attribute_tag, attribute in split(rdn):
            parts = split(attribute)
            if attribute_tag != 0x30 or len(parts) != 2:
                raise ValueError("an attribute is SEQUENCE { type, value }")
            (_, oid), (value_tag, value) = parts
            if value_tag not in _STRINGS:
                raise ValueError("an attribute value that is not a string")
            kind, codec = _STRINGS[value_tag]
            _, start, end = read_tlv(value, 0, len(value))
            text = value[start:end].decode(codec)
            attributes.append(x509.NameAttribute(x509.ObjectIdentifier(oid_text(oid)), text, _type=kind))
        if not attributes:
            raise ValueError("an empty RDN")
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def load_general_name(der: bytes) -> x509.GeneralName:
    """A GeneralName's whole TLV -> cryptography's: directoryName, rfc822Name, dNSName, URI or iPAddress."""
    tag, start, end = read_tlv(der, 0, len(der))
    if end != len(der):
        raise ValueError("bytes after the GeneralName")
    content = der[start:end]
    if tag == 0xA4:
        return x509.DirectoryName(load_name(content))
    if tag == 0x81:
        return x509.RFC822Name(content.decode("ascii"))
    if tag == 0x82:
        return x509.DNSName(content.decode("ascii"))
    if tag == 0x86:
        return x509.UniformResourceIdentifier(content.decode("ascii"))
    if tag == 0x87 and len(content) in (4, 16):
        return x509.IPAddress(ipaddress.ip_address(content))
    raise ValueError("an unsupported GeneralName")


def directory_name(name: x509.Name) -> bytes:
    """The GeneralName [4] directoryName of `name`."""
    return tlv(0xA4, name.public_bytes())


def name_of(general_name: bytes) -> x509.Name | None:
    """The Name inside a directoryName (None for any other kind of GeneralName or one that does not read)."""
    try:
        value = load_general_name(general_name)
    except (ValueError, UnicodeDecodeError):
        return None
    return value.value if isinstance(value, x509.DirectoryName) else None
