"""The h2 library's server connection as Portico's HTTP/2 front uses it: settings, encoder, two corrections.

Built once per client connection by `server_connection`: no header validation or normalisation by h2 (the
router checks request heads itself, so a malformed one is a stream error, and it writes well-formed response
heads), the static-table HPACK encoder (h2_hpack), and the SETTINGS values in force from the first frame.
"""

from __future__ import annotations

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from portico.proxy.h2_hpack import StaticTableEncoder

STREAM_WINDOW = 1024 * 1024             # per stream: what a client may send before the backend takes it
CONNECTION_WINDOW = 16 * 1024 * 1024    # all streams of one connection together


class ServerConnection(H2Connection):
    """h2's server connection with two corrections (h2 is pinned to 4.x, where these internals are stable):
    a client's GOAWAY does not stop us sending (RFC 9113 6.8 lets the streams it already opened finish; h2
    would refuse every frame after it), and a stream past our limit is refused alone, not the connection."""

    @property
    def open_inbound_streams(self) -> int:
        """0 to h2's own check, which would make a stream past the limit a connection error; the limit is kept
        per stream instead (REFUSED_STREAM, RFC 9113 5.1.2). h2's cleanup of closed streams still runs."""
        self._open_streams(int(not self.config.client_side))
        return 0

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list, list]:
        event = ConnectionTerminated()
        event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


def server_connection(max_streams: int, max_header_list: int) -> ServerConnection:
    """A server connection for one client, its SETTINGS (streams, header list, windows) given from the start."""
    conn = ServerConnection(H2Configuration(client_side=False, header_encoding=None,
                                            validate_inbound_headers=False, normalize_inbound_headers=False,
                                            validate_outbound_headers=False, normalize_outbound_headers=False))
    conn.encoder = StaticTableEncoder()  # type: ignore[assignment]  # h2_hpack: hpack's cost ~13% per stream
    # Initial values (not an update): they go in our first SETTINGS frame and apply from the start.
    conn.local_settings = Settings(client=False, initial_values={
        SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
        SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list,
        SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
        SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,     # no extended CONNECT (RFC 8441): no WebSockets over h2
    })
    return conn
