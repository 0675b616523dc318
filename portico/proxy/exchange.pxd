# Compiled layout of portico/proxy/exchange.py: the fields are ExchangeState's typed slots; `__dict__` keeps
# the class open to fields added elsewhere at run time.
from portico.proxy.exchange_state cimport ExchangeState

cdef class Exchange(ExchangeState):
    cdef dict __dict__
