# Compiled layout of portico/observe/access_log.py: the line formatted from C numbers and typed slots.
cimport cython

cdef class AccessLog:
    cdef dict __dict__
    cdef public object path, extra_headers, _template, _leftover, _buffer, _second_text, _inode, _timer, _loop
    cdef public Py_ssize_t _field_count, _extra_count
    cdef public int _fd
    cdef public long long _second
    cdef public double _next_rotation_check
    cdef public bint _closed, _failing

    @cython.locals(second=cython.longlong, micros=cython.longlong, buffer=list)
    cpdef log(self, double start_time, int status, request_bytes, response_bytes, response_time,
              gorouter_time, fields)
    @cython.locals(rt_s=cython.longlong, rt_us=cython.longlong, gt_s=cython.longlong, gt_us=cython.longlong,
                   values=tuple)
    cpdef bytes _format(self, micros, status, request_bytes, response_bytes, response_time, gorouter_time, v)
