# Compiled layout of portico/observe/access_log.py: the line written from C numbers and typed slots, byte by
# byte into the batch (a bytearray used as a C buffer: `_size` bytes of lines, the rest room to grow into).
cimport cython
from libc.string cimport memcpy

# the word test's constants (access_log.py): C constants, not Python ints
cdef unsigned long long _LOW, _HIGH, _SPACES, _QUOTES, _BACKSLASHES, _DELETES

cdef void _copy(unsigned char* p, const unsigned char* s, Py_ssize_t n) noexcept   # gcc inlines it

@cython.final   # nothing derives from it: its own calls are direct C calls, not through a vtable
cdef class AccessLog:
    cdef dict __dict__
    cdef public object path, extra_headers, _template, _leftover, _inode, _timer, _loop
    cdef public bytes _second_text, _quoting
    cdef public bytearray _buffer
    cdef public tuple _extra_keys
    cdef public Py_ssize_t _field_count, _extra_count, _lines, _size, _max_lines
    cdef public int _fd
    cdef public long long _second
    cdef public double _next_rotation_check
    cdef public bint _closed, _failing

    cpdef log(self, double start_time, int status, request_bytes, response_bytes, response_time,
              gorouter_time, fields)
    @cython.locals(second=cython.longlong, micros=cython.longlong, n=Py_ssize_t, i=Py_ssize_t)
    cpdef write_line(self, double start_time, int status, long long request_bytes, long long response_bytes,
                     double response_time, double gorouter_time, host, method, uri, proto, referer, user_agent,
                     client_addr, backend, x_forwarded_for, x_forwarded_proto, request_id, app_id, app_index,
                     instance_id, router_error, tuple extra)
    @cython.locals(size=Py_ssize_t)
    cdef void _grow(self, Py_ssize_t n) except *
    @cython.locals(data=bytes, text=str, n=Py_ssize_t, m=Py_ssize_t, size=Py_ssize_t, j=Py_ssize_t, k=Py_ssize_t,
                   p='unsigned char*', s='const unsigned char*', t='const unsigned char*', a='const unsigned char*',
                   c=cython.uchar, w=cython.ulonglong, x=cython.ulonglong, y=cython.ulonglong, z=cython.ulonglong)
    cdef inline int _put(self, value, bytes after) except -1
    @cython.locals(n=Py_ssize_t, size=Py_ssize_t, j=Py_ssize_t, p='unsigned char*', s='const unsigned char*')
    cdef int _put_raw(self, bytes data) except -1
    @cython.locals(m=Py_ssize_t, size=Py_ssize_t, j=Py_ssize_t, i=Py_ssize_t, end=Py_ssize_t, digits=int,
                   x=cython.longlong, p='unsigned char*', a='const unsigned char*')
    cdef inline int _put_number(self, long long n, int width, bytes after) except -1
    @cython.locals(micros=cython.longlong)
    cdef int _put_seconds(self, double seconds, bytes after) except -1
    @cython.locals(rt_s=cython.longlong, rt_us=cython.longlong, gt_s=cython.longlong, gt_us=cython.longlong,
                   values=tuple)
    cpdef bytes _format(self, micros, status, request_bytes, response_bytes, response_time, gorouter_time, v)
