"""Go's value model in Python: which Python value stands for which Go type, and Go's truth and type names.

Byte-identical output depends on Go's types (a JSON number is a float64, `split` gives a []string that `join`
accepts while a []interface{} is refused), so values carry enough of their Go type to print and to be checked
as Go would:

| Go                        | Python                                    |
|---------------------------|-------------------------------------------|
| invalid reflect.Value     | MISSING (prints `<no value>`)             |
| nil (interface, map...)   | None                                      |
| string, bool, int         | str, bool, int                            |
| float64                   | float                                     |
| uint8 (a byte of a string)| Byte (an int subclass)                    |
| []interface{}             | list                                      |
| []string, []int           | StrSlice, IntSlice (list subclasses)      |
| []memkv.KVPair            | KVSlice                                   |
| map[string]interface{}    | dict                                      |
| structs, time.Time, ...   | GoStruct subclasses                       |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _Missing:
    """Go's invalid reflect.Value: a missing map key or nil data. Printed as `<no value>`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class Byte(int):
    """A uint8, as `index` on a string returns it."""


class StrSlice(list):
    """A Go []string."""


class IntSlice(list):
    """A Go []int."""


class KVSlice(list):
    """A Go []memkv.KVPair."""


class GoStruct:
    """A Go struct (or pointer to one): named exported fields, optional methods, Go's printing."""

    go_type = "struct {}"
    go_fields: tuple[str, ...] = ()
    go_pointer = False          # printed as &{...} at top level, like a *T

    def go_field(self, name: str) -> Any:
        return getattr(self, name)

    def go_method(self, name: str) -> GoFunc | None:
        return None


class GoFunc:
    """A Go function with its signature, so arguments are checked and converted as Go's reflection would.

    Parameter types: "string", "int", "bool", "float64", "any", "[]string", "[]memkv.KVPair", "value"
    ("value" takes anything, untouched, like a reflect.Value parameter). `variadic` is the type of the
    trailing ...parameter. `error` says the function returns (value, error): an exception it raises becomes
    Go's "error calling NAME: ..." message.
    """

    __slots__ = ("fn", "lazy", "name", "params", "returns_error", "variadic")

    def __init__(self, name: str, fn: Callable[..., Any], params: tuple[str, ...] = (),
                 variadic: str | None = None, returns_error: bool = False, lazy: bool = False):
        self.name, self.fn, self.params, self.variadic = name, fn, params, variadic
        self.returns_error, self.lazy = returns_error, lazy

    @property
    def go_type(self) -> str:
        params = list(self.params) + ([f"...{self.go_param(self.variadic)}"] if self.variadic else [])
        return "func(" + ", ".join(self.go_param(p) for p in params) + ")"

    @staticmethod
    def go_param(p: str) -> str:
        return {"any": "interface {}", "value": "reflect.Value"}.get(p, p)


class GoError(Exception):
    """An error a Go function returns; its message is Go's text."""


def type_name(value: Any) -> str:
    """Go's name for the dynamic type of `value`, as reflect.Type.String() prints it."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Byte):
        return "uint8"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, StrSlice):
        return "[]string"
    if isinstance(value, IntSlice):
        return "[]int"
    if isinstance(value, KVSlice):
        return "[]memkv.KVPair"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, GoStruct):
        return value.go_type
    if isinstance(value, GoFunc):
        return value.go_type
    return type(value).__name__


def kind(value: Any) -> str:
    """Go's reflect.Kind family of `value`: bool, int, float, string, slice, map, struct, func, nil, invalid."""
    if value is MISSING:
        return "invalid"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Byte):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "slice"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, GoFunc):
        return "func"
    return "struct"


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, empty string/slice/map and missing values are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True
