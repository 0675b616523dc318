"""Route service signatures in gorouter's byte format (routeservice/signature.go, common/secure/crypto.go)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portico.proxy import rs_signature
from portico.proxy.rs_signature import SignatureError, SignatureKey


def test_format_matches_gorouter():
    """Decrypt by hand, as gorouter would: PBKDF2-SHA256(secret, no salt, 100001, 16) -> AES-128-GCM."""
    sig, meta = rs_signature.sign(SignatureKey("s3cret"), "http://a.com/x?a=1&b=<2>", 1700000000123456789)
    nonce = base64.b64decode(json.loads(base64.urlsafe_b64decode(meta))["nonce"])
    assert len(nonce) == 12
    key = hashlib.pbkdf2_hmac("sha256", b"s3cret", b"", 100001, 16)
    plain = AESGCM(key).decrypt(nonce, base64.urlsafe_b64decode(sig), b"")
    assert plain == (b'{"forwarded_url":"http://a.com/x?a=1\\u0026b=\\u003c2\\u003e",'
                     b'"requested_time":"2023-11-14T22:13:20.123456789Z"}')


def test_round_trip_and_rotation():
    now, before = SignatureKey("now"), SignatureKey("before")
    sig, meta = rs_signature.sign(before, "https://app.example.com/p")
    url, _when = rs_signature.read((now, before), sig, meta)
    assert url == "https://app.example.com/p"
    with pytest.raises(SignatureError, match="message authentication failed"):
        rs_signature.read((now,), sig, meta)


@pytest.mark.parametrize("text, seconds", [
    ("2023-11-14T22:13:20Z", 1700000000.0), ("2023-11-14T22:13:20.5Z", 1700000000.5),
    ("2023-11-15T00:13:20.25+02:00", 1700000000.25), ("2023-11-14T21:13:20-01:00", 1700000000.0),
])
def test_parse_go_times(text, seconds):
    assert rs_signature.parse_time(text) == pytest.approx(seconds)


def test_expiry_and_bad_headers():
    with pytest.raises(SignatureError) as info:
        rs_signature.check_age(1000.0, 60.0, now=1061.0)
    assert info.value.expired and str(info.value) == "route service request expired"
    rs_signature.check_age(1000.0, 60.0, now=1059.0)
    key = SignatureKey("k")
    with pytest.raises(SignatureError, match="No metadata found"):
        rs_signature.read((key,), b"abc", b"")
    with pytest.raises(SignatureError, match="illegal base64"):
        rs_signature.read((key,), b"abc", b"!!!")
    short = base64.urlsafe_b64encode(b'{"nonce":"AAAA"}')
    with pytest.raises(SignatureError, match="incorrect nonce length"):
        rs_signature.read((key,), base64.urlsafe_b64encode(b"x" * 20), short)
