# Compiled layout of portico/bus/frames.py: the MSG frame cutter with C-sized offsets.
cimport cython

# C globals: a Python-level constant was a module dict lookup per frame, the 12-digit bound a Python int compare
cdef bytes _HMSG, _MSG_REGISTER, _MSG_UNREGISTER, _HMSG_REGISTER, _HMSG_UNREGISTER
cdef Py_ssize_t _MAX_CONTROL_LINE, _JOIN_ROOM, _SIZE_DIGITS_SCALE

@cython.locals(size=Py_ssize_t, k=Py_ssize_t, have="const char *", want="const char *")
cdef bint _starts(bytes data, Py_ssize_t pos, bytes prefix) except -1

cdef class FrameParser:
    cdef public object on_register, on_unregister, on_control
    cdef bytes _pending
    cdef Py_ssize_t _need

    @cython.locals(pending=bytes, have=Py_ssize_t, take=Py_ssize_t, done=Py_ssize_t, pos=Py_ssize_t)
    cpdef feed(self, bytes data)
    @cython.locals(n=Py_ssize_t, eol=Py_ssize_t, sp=Py_ssize_t, sp2=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t,
                   body=Py_ssize_t, i=Py_ssize_t, size=Py_ssize_t, scale=Py_ssize_t, c=Py_ssize_t, buf="const char *")
    cdef Py_ssize_t _cut(self, bytes data, Py_ssize_t pos) except -1
