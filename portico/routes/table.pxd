# Compiled layout of portico/routes/table.py: RouteTable as a cdef class, so the route feed's register path (one
# call per registration, portico.bus.messages cimports it) runs as C: the counters are C integers, the uri's str
# methods and the buckets' dict lookups are direct C-API calls instead of generic method calls. The TTL stays an
# object: every endpoint shares the table's one float (a C double would make a new float per read).
cimport cython
from portico.routes.endpoint cimport _same_fields
from portico.routes.pool cimport cursor_for, member_at

cdef bint COMPILED
cdef Py_ssize_t _ALGORITHM, _UPDATED_AT, _UPDATED_AT_NS, _ADDRESS

@cython.locals(ch=Py_UCS4)
cpdef str normal_uri(str uri)
@cython.locals(ch=Py_UCS4)
cpdef str plain_host(str uri)

cdef class RouteTable:
    cdef public object droplet_stale_threshold, keep_empty_for, default_algorithm
    cdef public dict _emptied, _exact, _wildcard
    cdef public Py_ssize_t route_count, _endpoint_count, generation

    cpdef ttl_for(self, stale_threshold_in_seconds)
    @cython.locals(host=str)
    cpdef register(self, str uri, endpoint)
    @cython.locals(host=str)
    cpdef register_fields(self, str uri, tuple fields)
    cpdef _renew_or_place(self, pool, tuple fields)
    cpdef renew(self, str uri, tuple fields)
    @cython.locals(path=str, key=str)
    cpdef _pool_for(self, str host)
    cpdef _new_host(self, str host, endpoint, str algorithm)
    cpdef _put(self, pool, endpoint)
    @cython.locals(had=Py_ssize_t)
    cpdef _place(self, pool, endpoint)
    cpdef _renew(self, pool, tuple fields)
