"""Route service signatures in gorouter's own format, so Portico and gorouter routers can share a secret.

The key is PBKDF2-HMAC-SHA256 of `route_services_secret` (empty salt, 100001 rounds, 16 bytes) used for
AES-128-GCM with a random 12-byte nonce. X-CF-Proxy-Signature is the URL-safe base64 (padded) of the
sealed JSON `{"forwarded_url": ..., "requested_time": <RFC 3339, nanoseconds>}`; X-CF-Proxy-Metadata is the
URL-safe base64 of `{"nonce": <standard base64 of the nonce>}`. The key is derived once, at start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from calendar import timegm

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_SIZE = 12
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z")


class SignatureError(Exception):
    """A signature that cannot be read or has expired; the text reads like gorouter's."""

    def __init__(self, text: str, expired: bool = False) -> None:
        super().__init__(text)
        self.expired = expired


EXPIRED = "route service request expired"


class SignatureKey:
    """One AES-GCM key derived from a route services secret."""

    def __init__(self, secret: str) -> None:
        key = hashlib.pbkdf2_hmac("sha256", secret.encode(), b"", 100001, 16)
        self._aead = AESGCM(key)

    def seal(self, plain: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_SIZE)
        return self._aead.encrypt(nonce, plain, b""), nonce

    def open(self, sealed: bytes, nonce: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise SignatureError("incorrect nonce length")
        try:
            return self._aead.decrypt(nonce, sealed, b"")
        except InvalidTag:
            raise SignatureError("cipher: message authentication failed") from None


def sign(key: SignatureKey, forwarded_url: str, now_ns: int | None = None) -> tuple[bytes, bytes]:
    """(X-CF-Proxy-Signature, X-CF-Proxy-Metadata) values for a request about to go to a route service."""
    contents = b'{"forwarded_url":' + _go_json_string(forwarded_url) + b',"requested_time":"' \
        + format_time(time.time_ns() if now_ns is None else now_ns).encode() + b'"}'
    sealed, nonce = key.seal(contents)
    metadata = b'{"nonce":"' + base64.b64encode(nonce) + b'"}'
    return base64.urlsafe_b64encode(sealed), base64.urlsafe_b64encode(metadata)


def read(keys: tuple[SignatureKey, ...], signature: bytes, metadata: bytes) -> tuple[str, float]:
    """(forwarded URL, requested time in epoch seconds) from the two headers, trying each key in turn.

    Raises SignatureError with the first key's reason when no key opens it (gorouter reports the last).
    """
    if not metadata:
        raise SignatureError("No metadata found")
    nonce_doc = _json_object(_b64url(metadata))
    nonce_text = nonce_doc.get("nonce")
    try:
        nonce = base64.b64decode(nonce_text or "", validate=True) if isinstance(nonce_text, str) else b""
    except binascii.Error:
        raise SignatureError("illegal base64 data in nonce") from None
    sealed = _b64url(signature)
    error: SignatureError | None = None
    for key in keys:
        try:
            plain = key.open(sealed, nonce)
        except SignatureError as exc:
            error = exc
            continue
        contents = _json_object(plain)
        url, when = contents.get("forwarded_url"), contents.get("requested_time")
        if not isinstance(url, str) or not isinstance(when, str):
            raise SignatureError("signature contents are incomplete")
        return url, parse_time(when)
    raise error or SignatureError("route services are not enabled")


def check_age(requested_at: float, timeout: float, now: float | None = None) -> None:
    if (time.time() if now is None else now) - requested_at > timeout:
        raise SignatureError(EXPIRED, expired=True)


def format_time(ns: int) -> str:
    """Go's RFC3339Nano in UTC: fraction without trailing zeros, `Z`."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> float:
    """Epoch seconds from RFC 3339 with any fraction and offset (what Go's time.Time JSON decoding takes)."""
    m = _RFC3339.match(text)
    if m is None:
        raise SignatureError(f'parsing time "{text}": not RFC 3339')
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    seconds = float(timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    if m.group(7):
        seconds += int(m.group(7)) / 10 ** len(m.group(7))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    return seconds


def _b64url(value: bytes) -> bytes:
    try:
        return base64.b64decode(value, altchars=b"-_", validate=True)
    except binascii.Error:
        raise SignatureError("illegal base64 data") from None


def _json_object(data: bytes) -> dict:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("invalid JSON in route service signature") from None
    if not isinstance(value, dict):
        raise SignatureError("invalid JSON in route service signature")
    return value


def _go_json_string(text: str) -> bytes:
    """A JSON string as Go's encoder writes it (<, >, & and U+2028/9 escaped), so both routers agree."""
    out = json.dumps(text, ensure_ascii=False)
    out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
