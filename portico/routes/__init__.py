"""The route table: uri keys, endpoints, pools, balancing. Pure and synchronous, no I/O."""

from portico.routes.endpoint import Endpoint, make_endpoint
from portico.routes.pool import LEAST_CONNECTION, ROUND_ROBIN, Pool, new_pool
from portico.routes.table import RouteTable
from portico.routes.uri import host_without_port, split_route

__all__ = ["LEAST_CONNECTION", "ROUND_ROBIN", "Endpoint", "Pool", "RouteTable", "host_without_port", "make_endpoint",
           "new_pool", "split_route"]
