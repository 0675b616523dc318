# Compiled layout of portico/proxy/backend_side.py: the Exchange's calls to its backend connection as cpdef
# methods (a C vtable call to the HTTP/1.1 connection; the HTTP/2 stream overrides them in Python).
# Cimports nothing, so the exchange and the connections may all cimport it.

cdef class BackendSide:
    cdef public object flow     # the client's Flow while attached (flow.pxd cimports this file), else None
    cpdef attach(self, ex)
    cpdef detach(self)
    cpdef bint reused(self) except -1
    cpdef send_request(self, bytes head, bint chunked, list body, bint ended, list trailers=*)
    cpdef send_body(self, chunk)
    cpdef end_body(self, list trailers=*)
    cpdef write(self, data)
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef release(self)
    cpdef close(self)
    cpdef abort(self)
    cpdef bytes endpoint_headers(self, endpoint)

cdef class BackendSource:
    cpdef BackendSide take_idle_for(self, endpoint, bint upgrade=*)
