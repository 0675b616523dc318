# Compiled layout of portico/proxy/forwarded_lines.py: its caches as typed slots, reached by C calls
# (routing.pxd cimports ForwardedLines). Cimports nothing of the proxy.
cimport cython
from portico.proxy.head_buffer cimport HeadBuffer

@cython.final
cdef class ForwardedLines:
    cdef dict _proto_lines
    cdef long long _start_ms, _start_second
    cdef bytes _start_line, _second_prefix

    @cython.locals(line=bytes)
    cpdef bytes proto_line(self, bytes xfp)
    @cython.locals(ms="long long", second="long long")
    cpdef bytes request_start(self, double wall)
    @cython.locals(ms="long long", second="long long")
    cpdef put_request_start(self, HeadBuffer head, double wall)
