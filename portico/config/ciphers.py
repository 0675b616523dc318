"""gorouter's `cipher_suites` (OpenSSL-style or Go/IANA names, `:`-separated) as an OpenSSL cipher list.

gorouter accepts both spellings (`ECDHE-RSA-AES128-GCM-SHA256` and `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`);
Python's ssl takes OpenSSL's. TLS 1.3 suites are not configurable, in gorouter as here.
"""

from __future__ import annotations

import re
import ssl

_IANA = re.compile(r"TLS_(ECDHE_RSA|ECDHE_ECDSA|RSA)_WITH_(AES_128_GCM|AES_256_GCM|AES_128_CBC|AES_256_CBC|"
                   r"CHACHA20_POLY1305|3DES_EDE_CBC|RC4_128)(?:_(SHA256|SHA384|SHA))?\Z")
_KX = {"ECDHE_RSA": "ECDHE-RSA-", "ECDHE_ECDSA": "ECDHE-ECDSA-", "RSA": ""}
_CIPHER = {"AES_128_GCM": "AES128-GCM", "AES_256_GCM": "AES256-GCM", "AES_128_CBC": "AES128",
           "AES_256_CBC": "AES256", "CHACHA20_POLY1305": "CHACHA20-POLY1305", "3DES_EDE_CBC": "DES-CBC3",
           "RC4_128": "RC4"}


def openssl_name(name: str) -> str:
    """One suite name in OpenSSL's spelling; OpenSSL names pass through unchanged."""
    m = _IANA.match(name)
    if m is None:
        return name
    kx, cipher, mac = m.groups()
    text = _KX[kx] + _CIPHER[cipher]
    if cipher != "CHACHA20_POLY1305" and mac:
        text += "-" + mac
    return text


def openssl_cipher_list(value: str) -> str:
    """The OpenSSL list for a gorouter `cipher_suites` value; ValueError names the first unknown suite."""
    names = [n.strip() for n in value.split(":") if n.strip()]
    out = []
    for name in names:
        converted = openssl_name(name)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(converted)
        except ssl.SSLError:
            raise ValueError(f"unknown or unsupported cipher suite {name!r}") from None
        out.append(converted)
    return ":".join(out)
