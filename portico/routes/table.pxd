# Compiled layout of portico/routes/table.py: RouteTable as a cdef class, so the route feed's register path (one
# call per registration, portico.bus.messages cimports it) runs as C: the counters are C integers, the uri's str
# methods and the buckets' dict lookups are direct C-API calls instead of generic method calls. The TTL stays an
# object: every endpoint shares the table's one float (a C double would make a new float per read).
cimport cython

cdef class RouteTable:
    cdef public object droplet_stale_threshold, keep_empty_for, default_algorithm
    cdef public dict _emptied, _exact, _wildcard
    cdef public Py_ssize_t route_count, _endpoint_count, generation

    cpdef ttl_for(self, stale_threshold_in_seconds)
    @cython.locals(host=str, exact=dict)
    cpdef register(self, str uri, endpoint)
    @cython.locals(had=Py_ssize_t)
    cpdef _put(self, pool, endpoint)
