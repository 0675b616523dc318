# Compiled layout of portico/proxy/host_names.py: the router's host cache as a typed dict, reached by a C call
# (routing.pxd cimports HostNames), and the usual Host value normalised by one C loop over its bytes.
# Cimports nothing of the proxy.
cimport cython

@cython.final
cdef class HostNames:
    cdef dict _names
    cdef bint _full
    cdef readonly bint sampling
    cdef int _skip, _asked, _hits

    @cython.locals(name=str)
    cpdef str name(self, bytes host)

cdef bytes _BYTE_KINDS
cdef unsigned char _COLON, _OTHER

@cython.locals(n=Py_ssize_t, end=Py_ssize_t, i=Py_ssize_t, kind="unsigned char", p="const unsigned char*",
               kinds="const unsigned char*")
cpdef str normalise_host(bytes host)
cdef str _general(bytes host)
