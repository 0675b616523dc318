"""bus: the NATS control plane. Decode gorouter registrations, apply them to the route table, announce the
router (router.start / router.greet), prune stale endpoints, and publish registrations (`portico register`)."""

from portico.bus.messages import (
    MalformedMessage,
    Registration,
    apply_registration,
    apply_unregistration,
    decode_registration,
    encode_registration,
    registration_to_endpoint,
    start_message,
)
from portico.bus.pruner import Pruner
from portico.bus.subscriber import RouteBus

__all__ = [
    "MalformedMessage", "Pruner", "Registration", "RouteBus", "apply_registration", "apply_unregistration",
    "decode_registration", "encode_registration", "registration_to_endpoint", "start_message",
]
