# Compiled layout of portico/proxy/headers.py: the request id pool's offsets as C sizes.
cimport cython

cdef class _RequestIds:
    cdef public bytes ids
    cdef public Py_ssize_t next

    @cython.locals(start=Py_ssize_t)
    cpdef bytes take(self)
    @cython.locals(raw=bytearray, ids=bytearray, digits=bytearray)
    cpdef refill(self)
    cpdef forget(self)

cdef _RequestIds _IDS

cpdef bytes request_id()
cpdef object header_kind(dict kinds, dict special, bytes name, object plain)
cpdef list connection_tokens(value)
