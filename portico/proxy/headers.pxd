# Compiled layout of portico/proxy/headers.py: the request id pool's random bytes and C index, each id written
# by guids.dashed_hex's C loop into a reused 36-byte scratch.
cimport cython
from portico.routes.guids cimport dashed_hex

cdef class _RequestIds:
    cdef public list ids
    cdef public bytes random
    cdef public bytearray text
    cdef public Py_ssize_t next

    @cython.locals(rid=bytes)
    cpdef bytes take(self)
    @cython.locals(i=Py_ssize_t, n=Py_ssize_t, r='const unsigned char*', p='unsigned char*')
    cdef bytes _format_next(self)
    @cython.locals(raw=bytearray, ids=bytearray, width=Py_ssize_t, offset=Py_ssize_t)
    cpdef refill(self)
    cpdef forget(self)

cdef _RequestIds _IDS

@cython.locals(raw=bytearray)
cpdef bytearray _random_uuids()

cpdef bytes request_id()
cpdef object header_kind(dict kinds, dict special, bytes name, object plain)
cpdef list connection_tokens(value)
