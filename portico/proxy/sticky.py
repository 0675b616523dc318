"""Sticky sessions as gorouter does them: a __VCAP_ID__ cookie set next to the app's session cookie."""

from __future__ import annotations


class StickySessions:
    def __init__(self, config) -> None:
        self.names = tuple(n.encode() for n in config.sticky_session_cookie_names)
        self.secure_cookies = config.secure_cookies

    def observe_set_cookie(self, ex, value: bytes, out: list) -> None:
        """When the backend sets a session cookie, add `__VCAP_ID__=<instance id>` to the response."""
        name, _, rest = value.partition(b"=")
        if name.strip() not in self.names or ex.endpoint is None or not ex.endpoint.private_instance_id:
            return
        attrs = [a.strip() for a in rest.split(b";")[1:]]
        lower = [a.lower() for a in attrs]
        path = (ex.pool.context_path if ex.pool is not None else "") or "/"
        parts = [b"__VCAP_ID__=" + ex.endpoint.private_instance_id.encode("latin-1", "replace"),
                 b"Path=" + path.encode("latin-1", "replace")]
        for attr, low in zip(attrs, lower, strict=False):
            if low.startswith((b"max-age=", b"expires=", b"samesite=")):
                parts.append(attr)
        parts.append(b"HttpOnly")
        if self.secure_cookies or b"secure" in lower:
            parts.append(b"Secure")
        out += (b"Set-Cookie", b": ", b"; ".join(parts), b"\r\n")
