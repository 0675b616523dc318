# Compiled layout of portico/proxy/client_base.py: the Exchange's calls to its client as cpdef methods (a C
# vtable call to the HTTP/1.1 connection; the HTTP/2 stream overrides them in Python). Cimports nothing.

cdef class ClientBase:
    cdef public object flow     # its Flow (flow.pxd cimports this file, so it is typed where it is used)
    cdef public bytes client_ip, client_addr_bytes, log_protocol
    cdef public str client_ip_str
    cdef public bint http11
    cpdef write(self, data)
    cpdef send_trailers(self, list headers)
    cpdef cork(self)
    cpdef uncork(self)
    cpdef bint attached(self, ex) except -1
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef exchange_finished(self, ex, bint aborted=*)
    cpdef start_tunnel(self, ex, conn, bytes rest)
    cpdef peer_certificate(self)
    cpdef close(self)
