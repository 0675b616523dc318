# Compiled layout of portico/proxy/host_names.py: the router's host cache as a typed dict, reached by a C call
# (routing.pxd cimports HostNames). Cimports nothing of the proxy.
cimport cython

@cython.final
cdef class HostNames:
    cdef dict _names

    @cython.locals(name=str)
    cpdef str name(self, bytes host)

cpdef str normalise_host(bytes host)
