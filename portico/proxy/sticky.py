"""Sticky sessions as gorouter does them: a __VCAP_ID__ cookie set next to the app's session cookie.

The response side runs only when the router has session cookie names (decided once, at start): the proxy
hands each Set-Cookie value to `observe_set_cookie`, then calls `add_vcap_cookie` once per response.
"""

from __future__ import annotations

from typing import Any

VCAP_ID = b"__VCAP_ID__"
_COPIED_ATTRIBUTES = (b"expires=", b"samesite=", b"partitioned")


class StickySessions:
    def __init__(self, config: Any) -> None:
        self.names = tuple(n.encode() for n in config.sticky_session_cookie_names)
        self.secure_cookies = config.secure_cookies

    def observe_set_cookie(self, ex: Any, value: bytes) -> None:
        """Remember the app's first session cookie, and whether the app sets __VCAP_ID__ itself."""
        name = value.partition(b"=")[0].strip()
        if name == VCAP_ID:
            ex.app_sets_vcap_id = True
        elif name in self.names and not ex.session_cookie:
            ex.session_cookie = value

    def add_vcap_cookie(self, ex: Any, out: list) -> None:
        """Add `Set-Cookie: __VCAP_ID__=<instance>` when gorouter would.

        That is when the app set a session cookie, or when the request asked (by __VCAP_ID__ and a session
        cookie) for an instance other than the one that served it, so the client is re-pointed at the new
        one. Never when the app sets __VCAP_ID__ itself.
        """
        ep = ex.endpoint
        if ex.app_sets_vcap_id or ep is None or not ep.private_instance_id:
            return
        path = (ex.pool.context_path if ex.pool is not None else "") or "/"
        if ex.negotiate_response:
            # sticky_sessions_for_auth_negotiate: a Negotiate handshake must finish on one instance
            if ex.sticky_id != ep.private_instance_id:
                out += (b"Set-Cookie", b": ", VCAP_ID + b"=" + ep.private_instance_id.encode("latin-1", "replace")
                        + b"; Path=" + path.encode("latin-1", "replace") + b"; Max-Age=60; HttpOnly"
                        + (b"; Secure" if self.secure_cookies else b"") + b"; SameSite=Strict", b"\r\n")
            return
        session = ex.session_cookie
        if not session and (not ex.sticky_id or ex.sticky_id == ep.private_instance_id):
            return
        parts = [VCAP_ID + b"=" + ep.private_instance_id.encode("latin-1", "replace"),
                 b"Path=" + path.encode("latin-1", "replace")]
        secure = self.secure_cookies
        if session:
            for attr in session.split(b";")[1:]:
                attr = attr.strip()
                low = attr.lower()
                if low.startswith(b"max-age="):
                    parts.append(_max_age(attr))
                elif low.startswith(_COPIED_ATTRIBUTES):
                    parts.append(attr)
                elif low == b"secure":
                    secure = True
        parts.append(b"HttpOnly")
        if secure:
            parts.append(b"Secure")
        out += (b"Set-Cookie", b": ", b"; ".join(parts), b"\r\n")


def _max_age(attr: bytes) -> bytes:
    """Max-Age for __VCAP_ID__: a positive one is copied (Portico), a negative one becomes 0 (as gorouter)."""
    value = attr.partition(b"=")[2].strip()
    if value[:1] == b"-":
        return b"Max-Age=0"
    return b"Max-Age=" + value
