"""Host values become route table hosts exactly as the general rule says (lower case, no port, no surrounding
whitespace, IPv6 literals whole), whichever way they are normalised: compiled, the usual value takes a C pass
over its bytes and everything else the general rule, and the two must never disagree."""

from __future__ import annotations

import pytest

from portico.proxy.host_names import HOST_CACHE_SIZE, JUDGED_EVERY, SAMPLE_EVERY, HostNames, normalise_host
from portico.routes.uri import host_without_port

pytestmark = pytest.mark.unit


def reference(host: bytes) -> str:
    return host_without_port(host.decode("latin-1")).strip().lower() if host else ""


def corpus() -> list[bytes]:
    hosts = [b"", b":", b"::", b":80", b"a:", b"app.example", b"app.example:8080", b"App.Example:8080",
             b"APP.EXAMPLE", b"[::1]", b"[::1]:8080", b"[::1", b"::1", b"fe80::1:8080", b"a:b:c", b"10.0.0.1:80",
             b" app.example ", b"app.example :80", b"app.example: 80", b"app.example:80 ", b"\tx\t",
             b"caf\xc3\xa9.example", b"CAF\xc9.example:1", b"\xa0host\xa0", b"host\x85", b"x_y-z~!$&'()*+,;=.%41",
             b"a" * 300 + b":1", b"xn--bcher-kva.example", b"@:", b"[", b"]", b"a]b:1", b"a[b:1", b"0"]
    for byte in range(256):
        one = bytes([byte])
        hosts += [one, one + b"app.example", b"app" + one + b"example", b"app.example" + one,
                  b"app.example:" + one, b"app" + one + b"example:8080", b"app.example:80" + one]
    return hosts


def test_every_host_is_normalised_as_the_general_rule_says() -> None:
    for host in corpus():
        assert normalise_host(host) == reference(host), host


def test_the_names_are_remembered_up_to_the_cache_size_and_still_right_past_it() -> None:
    names = HostNames()
    hosts = [b"Host-%d.Example:%d" % (i, i) for i in range(HOST_CACHE_SIZE + 50)]
    for _ in range(2):
        assert [names.name(h) for h in hosts] == [reference(h) for h in hosts]
    assert names.name(b"") == ""
    assert names.name(bytes(bytearray(b"app.example:80"))) == "app.example"


def test_a_full_cache_that_keeps_missing_is_asked_only_to_sample_and_again_when_it_hits() -> None:
    names = HostNames()
    remembered = [b"app-%d.example" % i for i in range(HOST_CACHE_SIZE)]
    for host in remembered:
        assert names.name(host) == host.decode()
    for i in range(JUDGED_EVERY):            # a busy few of the remembered: asking pays
        assert names.name(remembered[i % 10]) == remembered[i % 10].decode()
    assert not names.sampling
    for i in range(JUDGED_EVERY):            # a big table: every host new
        assert names.name(b"New-%d.Example:80" % i) == f"new-{i}.example"
    assert names.sampling
    # sampling, the cache answers 1 lookup in SAMPLE_EVERY: a window of hits takes that many lookups
    lookups = 0
    while names.sampling:
        host = remembered[lookups % HOST_CACHE_SIZE]
        assert names.name(host) == host.decode()
        lookups += 1
        assert lookups <= JUDGED_EVERY * SAMPLE_EVERY, "never asked again"
    assert lookups == JUDGED_EVERY * SAMPLE_EVERY   # 63 skipped, then asked, 1024 times over
