# Compiled layout of portico/proxy/response_head.py: the rules as slots, the exchange typed. The exchange is
# typed by its fields (ExchangeState), not as an Exchange: exchange.pxd cimports these rules, so the reverse
# would be a cycle, and the rules only read and set fields. The head is written into `_buffer` (a bytearray
# used as a C buffer: `_size` bytes of head, the rest room) by C loops, and taken as one bytes.
cimport cython
from portico.proxy.exchange_state cimport ExchangeState

cdef class ResponseHeadRules:
    cdef dict __dict__
    cdef public object sticky, router_ip, special, removed, add_if_absent
    cdef public bint rewrites
    cdef public dict kinds
    cdef public int _last_status
    cdef public bytes _last_reason, _last_line
    cdef public bint _last_http11
    cdef public list _order_names, _order_kinds, _out
    cdef public bytearray _buffer
    cdef public Py_ssize_t _size

    @cython.locals(kinds=dict, out=list, chunked=bint, http11=bint, order_names=list, order_kinds=list,
                   known=Py_ssize_t, i=Py_ssize_t, line=bytes)
    cpdef tuple forwarded(self, ExchangeState ex, int status, bytes reason, list headers, tuple skip)
    cpdef add(self, bytes piece)
    cpdef add_field(self, bytes name, bytes value)
    @cython.locals(p='unsigned char*', head=bytes)
    cpdef bytes take(self, bytes end)
    @cython.locals(size=Py_ssize_t)
    cdef void _grow(self, Py_ssize_t n) except *
    @cython.locals(n=Py_ssize_t, size=Py_ssize_t, j=Py_ssize_t, p='unsigned char*', s='const unsigned char*')
    cdef inline int _put(self, bytes data) except -1
    @cython.locals(n=Py_ssize_t, m=Py_ssize_t, size=Py_ssize_t, j=Py_ssize_t, p='unsigned char*',
                   s='const unsigned char*')
    cdef inline int _put_field(self, bytes name, bytes value) except -1
