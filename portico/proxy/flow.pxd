# Compiled layout of portico/proxy/flow.py: the flow between a client and its backend as a final cdef class,
# so the Exchange's attach/detach and the connections' pause/resume_writing are direct C calls. The client and
# the backend are typed by their interfaces (cpdef pause_reading/resume_reading through the vtable).
cimport cython
from portico.proxy.backend_side cimport BackendSide
from portico.proxy.client_base cimport ClientBase

@cython.final
cdef class Flow:
    cdef public ClientBase client
    cdef public BackendSide backend
    cdef public int client_stops, backend_stops

    @cython.locals(stops=int)
    cpdef stop_client(self, int reason)
    @cython.locals(stops=int)
    cpdef go_client(self, int reason)
    @cython.locals(stops=int)
    cpdef stop_backend(self, int reason)
    @cython.locals(stops=int)
    cpdef go_backend(self, int reason)
    cpdef client_write_full(self)
    cpdef client_write_drained(self)
    cpdef backend_write_full(self, BackendSide conn)
    cpdef backend_write_drained(self, BackendSide conn)
    cpdef attach(self, BackendSide conn)
    cpdef detach(self, BackendSide conn)
