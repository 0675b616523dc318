"""Go's time.Time for templates: what confd's `datetime` returns, with Go's String() and Format(layout).

`{{datetime}}` prints `2015-01-23 13:34:56.093250283 -0800 PST m=+0.004467201` (Go appends the monotonic
clock reading to time.Now()'s String); `{{datetime.Format "Jan 2, 2006 at 3:04pm (MST)"}}` formats with Go's
reference-time layout.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from portico.confsync.gotemplate.values import GoFunc, GoStruct

_START = time.monotonic_ns()

_LAYOUT = re.compile(r"January|Jan|Monday|Mon|MST|2006|01|02|_2|__2|002|15|03|04|05|06|"
                     r"Z07:00:00|Z070000|Z07:00|Z0700|Z07|-07:00:00|-070000|-07:00|-0700|-07|"
                     r"PM|pm|[.,](?:0+|9+)(?!\d)|1|2|3|4|5")


def _zone_name(t: dt.datetime) -> str:
    name = t.tzname() or ""
    if name.startswith(("UTC+", "UTC-")) or (name and name[0] in "+-"):
        off = t.utcoffset() or dt.timedelta()
        minutes = int(off.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        return f"{sign}{minutes // 60:02d}" + (f"{minutes % 60:02d}" if minutes % 60 else "")
    return name


def _offset(t: dt.datetime, sep: str, z: bool, seconds: bool = False, hours_only: bool = False) -> str:
    off = int((t.utcoffset() or dt.timedelta()).total_seconds())
    if z and off == 0:
        return "Z"
    sign = "-" if off < 0 else "+"
    off = abs(off)
    text = f"{sign}{off // 3600:02d}"
    if hours_only:
        return text
    text += f"{sep}{off % 3600 // 60:02d}"
    if seconds:
        text += f"{sep}{off % 60:02d}"
    return text


def go_format(t: dt.datetime, nanos: int, layout: str) -> str:
    """time.Time.Format: each element of the reference time Mon Jan 2 15:04:05 MST 2006 is replaced."""
    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        hour12 = t.hour % 12 or 12
        table = {
            "January": t.strftime("%B"), "Jan": t.strftime("%b"), "Monday": t.strftime("%A"),
            "Mon": t.strftime("%a"), "MST": _zone_name(t), "2006": f"{t.year:04d}", "06": f"{t.year % 100:02d}",
            "01": f"{t.month:02d}", "1": str(t.month), "02": f"{t.day:02d}", "2": str(t.day),
            "_2": f"{t.day:2d}", "__2": f"{t.timetuple().tm_yday:3d}", "002": f"{t.timetuple().tm_yday:03d}",
            "15": f"{t.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12), "04": f"{t.minute:02d}",
            "4": str(t.minute), "05": f"{t.second:02d}", "5": str(t.second),
            "PM": "PM" if t.hour >= 12 else "AM", "pm": "pm" if t.hour >= 12 else "am",
            "Z07:00:00": _offset(t, ":", True, seconds=True), "Z070000": _offset(t, "", True, seconds=True),
            "Z07:00": _offset(t, ":", True), "Z0700": _offset(t, "", True),
            "Z07": _offset(t, "", True, hours_only=True),
            "-07:00:00": _offset(t, ":", False, seconds=True), "-070000": _offset(t, "", False, seconds=True),
            "-07:00": _offset(t, ":", False), "-0700": _offset(t, "", False),
            "-07": _offset(t, "", False, hours_only=True),
        }
        if tok in table:
            return table[tok]
        digits = len(tok) - 1
        frac = f"{nanos:09d}"[:digits]
        if tok[1] == "9":
            frac = frac.rstrip("0")
            return (tok[0] + frac) if frac else ""
        return tok[0] + frac
    return _LAYOUT.sub(one, layout)


class GoTime(GoStruct):
    """A time.Time (local zone, nanoseconds, monotonic reading)."""

    go_type = "time.Time"

    def __init__(self, when: dt.datetime, nanos: int, mono: int | None = None):
        self.when, self.nanos, self.mono = when, nanos, mono

    @classmethod
    def now(cls) -> GoTime:
        ns = time.time_ns()
        when = dt.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
        return cls(when, ns % 1_000_000_000, time.monotonic_ns() - _START)

    def string(self) -> str:
        text = go_format(self.when, self.nanos, "2006-01-02 15:04:05.999999999 -0700 MST")
        if self.mono is not None:
            sign = "+" if self.mono >= 0 else "-"
            mono = abs(self.mono)
            text += f" m={sign}{mono // 1_000_000_000}.{mono % 1_000_000_000:09d}"
        return text

    def go_method(self, name: str) -> GoFunc | None:
        when = self.when
        methods: dict[str, GoFunc] = {
            "String": GoFunc("String", self.string),
            "Format": GoFunc("Format", lambda layout: go_format(when, self.nanos, layout), ("string",)),
            "Unix": GoFunc("Unix", lambda: int(when.timestamp())),
            "UnixNano": GoFunc("UnixNano", lambda: int(when.timestamp()) * 1_000_000_000 + self.nanos),
            "UTC": GoFunc("UTC", lambda: GoTime(when.astimezone(dt.UTC), self.nanos)),
            "Local": GoFunc("Local", lambda: GoTime(when.astimezone(), self.nanos)),
            "Year": GoFunc("Year", lambda: when.year), "Day": GoFunc("Day", lambda: when.day),
            "Hour": GoFunc("Hour", lambda: when.hour), "Minute": GoFunc("Minute", lambda: when.minute),
            "Second": GoFunc("Second", lambda: when.second), "Nanosecond": GoFunc("Nanosecond", lambda: self.nanos),
            "YearDay": GoFunc("YearDay", lambda: when.timetuple().tm_yday),
        }
        return methods.get(name)

    def __repr__(self) -> str:
        return f"GoTime({self.string()})"

