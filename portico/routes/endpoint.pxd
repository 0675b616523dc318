# Compiled layout of portico/routes/endpoint.py. Endpoint stays a msgspec Struct (a Python class Cython compiles
# like any other); what this buys is its methods and the module's functions as C: above all the X-CF-* block a
# request to a route no kept backend connection has served builds (each request, on a big table), written from
# the packed ids by guids.cf_block.
cimport cython
from portico.routes.guids cimport app_id_of, cf_block, instance_id_of, pack

cdef bint COMPILED
cdef Py_ssize_t _ACTIVE, _BENCHED_UNTIL, _REGISTRATION_END

@cython.locals(app=str, index=str, instance=str, text=str, block=bytes)
cpdef bytes _cf_header_block(ep)
cpdef bytes _latin1(str value)
@cython.locals(i=Py_ssize_t)
cpdef bint _same_fields(tuple mine, tuple theirs) except -1
