"""The static-table HPACK encoder for responses to HTTP/2 clients: what it writes decodes, with the hpack
library's own decoder, to exactly the fields given."""

from __future__ import annotations

import pytest
from hpack import Decoder

from portico.proxy.h2_hpack import StaticTableEncoder

pytestmark = pytest.mark.unit


def test_fields_round_trip_through_the_hpack_decoder():
    fields = [(b":status", b"200"), (b":status", b"418"), (b"content-type", b"text/plain"), (b"content-length", b"3"),
              (b"x-vcap-request-id", b"1d613a19-b378-4a45-9939-ff1d6da3fdda"), (b"x-long", b"v" * 300),
              (b"n" * 200, b""), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    encoder, decoder = StaticTableEncoder(), Decoder()
    for _ in range(3):      # nothing carried between blocks: the same result every time
        assert decoder.decode(encoder.encode(fields), raw=True) == fields


def test_indexed_fields_and_literals_stay_small():
    encoder = StaticTableEncoder()
    assert encoder.encode([(b":status", b"200")]) == b"\x88"          # static index 8
    assert encoder.encode([(b"content-length", b"3")]) == b"\x0f\x0d\x013"   # literal, name index 28, raw value


def test_a_header_table_size_change_is_acknowledged_once():
    encoder, decoder = StaticTableEncoder(), Decoder()
    encoder.header_table_size = 256
    block = encoder.encode([(b":status", b"204")])
    assert block[:1] == b"\x20"                                      # dynamic table size update: 0
    assert decoder.decode(block, raw=True) == [(b":status", b"204")]
    assert encoder.encode([(b":status", b"204")]) == b"\x89"
