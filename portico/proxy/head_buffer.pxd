# Compiled layout of portico/proxy/head_buffer.py: the head's bytes in a bytearray used as a C buffer (`_size`
# bytes written, the rest room), each piece a C copy. routing.pxd and exchange.pxd cimport it: C calls.
# Cimports nothing of the proxy.
cimport cython

from libc.string cimport memcpy

cdef void _copy(unsigned char* p, const unsigned char* s, Py_ssize_t n) noexcept

@cython.final   # nothing derives from it: its calls are direct C calls, not through a vtable
cdef class HeadBuffer:
    cdef bytearray _buffer
    cdef Py_ssize_t _size, _keep

    cpdef start(self)
    @cython.locals(n=Py_ssize_t, size=Py_ssize_t, p='unsigned char*')
    cpdef int put(self, bytes data) except -1
    @cython.locals(n=Py_ssize_t, m=Py_ssize_t, size=Py_ssize_t, p='unsigned char*')
    cpdef int put_field(self, bytes name, bytes value) except -1
    @cython.locals(size=Py_ssize_t, p='unsigned char*', head=bytes)
    cpdef bytes take(self)
    @cython.locals(size=Py_ssize_t)
    cdef void _grow(self, Py_ssize_t n) except *

cdef HeadBuffer _SCRATCH

@cython.locals(scratch=HeadBuffer, piece=bytes, size=Py_ssize_t)
cpdef bytes joined(list pieces)
@cython.locals(scratch=HeadBuffer)
cpdef bytes joined3(bytes a, bytes b, bytes c)
