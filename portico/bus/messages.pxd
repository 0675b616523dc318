# Compiled layout of portico/bus/messages.py: a decoded registration into an Endpoint and into the table, as C
# calls from the compiled applier (the feed runs them once per message). The msgspec Structs stay Python classes.
cimport cython
from portico.routes.table cimport RouteTable
from portico.routes.guids cimport pack as pack_guids

cdef dict _ADDRESSES, _INDEXES, _TAGS
cdef list _last_tags, _last_host, _last_index, _last_raw_tags
cdef Py_ssize_t _URIS_AT, _TAGS_AT

cpdef strict_decode(data)
cpdef tuple strict_fields(data)
@cython.locals(last=list)
cpdef checked_tags(raw)
cpdef tuple shared_address(host, port)
cpdef shared_instance_index(index)
cpdef shared_tags(tags)
cpdef registration_to_endpoint(reg, RouteTable table, now)
cpdef endpoint_from_fields(tuple fields, RouteTable table, now)
@cython.locals(ports=dict, shared=tuple, last=list, host=str, index=str, protocol=str)
cpdef tuple endpoint_fields(tuple fields, dict tags, RouteTable table, now)
@cython.locals(fields=tuple)
cpdef apply_registration(RouteTable table, reg, now)
@cython.locals(uris=list, values=tuple)
cpdef apply_fields(RouteTable table, tuple fields, dict tags, now)
@cython.locals(uris=list, removed=Py_ssize_t)
cpdef Py_ssize_t apply_unregistration(table, reg) except -1
