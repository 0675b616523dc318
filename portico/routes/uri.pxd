# Compiled layout of portico/routes/uri.py: host_without_port runs for every request whose Host the router's
# host name cache does not hold (on a big table, most of them), so its str methods become direct C calls.
cimport cython

@cython.locals(end=Py_ssize_t, colon=Py_ssize_t)
cpdef str host_without_port(str host)
