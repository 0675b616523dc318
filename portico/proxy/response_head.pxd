# Compiled layout of portico/proxy/response_head.py: the rules as slots, the exchange typed. The exchange is
# typed by its fields (ExchangeState), not as an Exchange: exchange.pxd cimports these rules, so the reverse
# would be a cycle, and the rules only read and set fields. The head is written into `_head` (a HeadBuffer:
# C copies into one reused buffer), and taken as one bytes.
cimport cython
from portico.proxy.exchange_state cimport ExchangeState
from portico.proxy.head_buffer cimport HeadBuffer

cdef class ResponseHeadRules:
    cdef dict __dict__
    cdef public object sticky, router_ip, special, removed, add_if_absent
    cdef public bint rewrites
    cdef public dict kinds
    cdef public int _last_status
    cdef public bytes _last_reason, _last_line
    cdef public bint _last_http11
    cdef public list _order_names, _order_kinds, _out
    cdef public HeadBuffer _head

    @cython.locals(kinds=dict, out=list, chunked=bint, http11=bint, order_names=list, order_kinds=list,
                   known=Py_ssize_t, i=Py_ssize_t, line=bytes, head=HeadBuffer)
    cpdef tuple forwarded(self, ExchangeState ex, int status, bytes reason, list headers, tuple skip)
    cpdef add(self, bytes piece)
    cpdef add_field(self, bytes name, bytes value)
    @cython.locals(head=HeadBuffer)
    cpdef bytes take(self, bytes end)
