# Compiled layout of portico/observe/route_traffic.py: a route's counters as a cdef class of C fields only (48 B,
# no garbage-collector header: nothing in it can refer to an object), written in place by the observer's one
# C call per request (count_request).
cimport cython

@cython.final
cdef class RouteCounters:
    cdef unsigned long long duration_us    # summed durations, microseconds
    cdef unsigned short errors             # 5xx answers not yet spilled (ERRORS_MAX)
    cdef unsigned char small[22]           # requests per latency bucket not yet spilled (route_traffic.SMALL_SLOTS)

@cython.locals(counters=RouteCounters)
cpdef void count_request(object route_traffic, object pool, int bucket, long long micros, bint error) except *

@cython.locals(traffic=object, n=object, i=Py_ssize_t)
cpdef object packed_of(RouteCounters counters)

@cython.locals(i=Py_ssize_t)
cpdef void _spill(dict spilled, RouteCounters counters) except *

@cython.locals(total=Py_ssize_t, i=Py_ssize_t)
cpdef Py_ssize_t _small_requests(RouteCounters counters) except -1
