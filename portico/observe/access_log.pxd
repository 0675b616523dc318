# Compiled layout of portico/observe/access_log.py: the line written from C numbers and typed slots.
cimport cython

cdef class AccessLog:
    cdef dict __dict__
    cdef public object path, extra_headers, _template, _leftover, _second_text, _inode, _timer, _loop
    cdef public bytearray _buffer
    cdef public tuple _extra_keys
    cdef public Py_ssize_t _field_count, _extra_count, _lines
    cdef public int _fd
    cdef public long long _second
    cdef public double _next_rotation_check
    cdef public bint _closed, _failing

    @cython.locals(second=cython.longlong, micros=cython.longlong)
    cpdef log(self, double start_time, int status, request_bytes, response_bytes, response_time,
              gorouter_time, fields)
    @cython.locals(buf=bytearray, i=Py_ssize_t, key=bytes)
    cdef void _write_line(self, long long micros, int status, long long request_bytes, long long response_bytes,
                          response_time, gorouter_time, tuple v) except *
    @cython.locals(rt_s=cython.longlong, rt_us=cython.longlong, gt_s=cython.longlong, gt_us=cython.longlong,
                   values=tuple)
    cpdef bytes _format(self, micros, status, request_bytes, response_bytes, response_time, gorouter_time, v)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, c=cython.uchar)
cdef void _put_value(bytearray buf, bytes value) except *

@cython.locals(scale=cython.longlong, digits=int)
cdef void _put_digits(bytearray buf, long long n, int width) except *

@cython.locals(micros=cython.longlong)
cdef void _put_seconds(bytearray buf, seconds) except *
