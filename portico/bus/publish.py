"""Publishing registrations the way an app or a registrar does: `portico register` / `portico unregister`."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client

from portico.bus.messages import REGISTER, UNREGISTER, Registration, encode_registration
from portico.bus.subscriber import redact

log = logging.getLogger("portico.bus.publish")


class NatsUnavailable(ConnectionError):
    """NATS could not be reached; str() is a one-line reason naming the servers tried."""


async def connect(urls: list[str], *, timeout: float = 2.0) -> Client:
    """One connection attempt to any of `urls` (no endless retrying); NatsUnavailable on failure."""
    errors: list[str] = []

    async def on_error(err: Exception) -> None:
        errors.append(str(err) or err.__class__.__name__)

    # nats-py retries the first connect inside connect() until each server has failed more than
    # max_reconnect_attempts times (0 would mean forever): 1 gives every server two quick tries.
    attempt = nats.connect(urls, allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.2,
                           connect_timeout=timeout, error_cb=on_error, name="portico-register")
    try:
        async with asyncio.timeout((timeout + 0.5) * 2 * len(urls) + 1):
            return await attempt
    except Exception as err:
        reason = errors[-1] if errors else (str(err) or err.__class__.__name__)
        where = ", ".join(redact(u) for u in urls)
        raise NatsUnavailable(f"cannot connect to NATS at {where}: {reason}".replace("\n", " ")) from None


async def publish(nc: Client, subject: str, payload: bytes, *, timeout: float = 5.0) -> None:
    """Publish and wait until the server has it (flush), so the caller may exit right after."""
    await nc.publish(subject, payload)
    await nc.flush(timeout=timeout)  # type: ignore[arg-type]  # annotated int, takes seconds


async def publish_once(urls: list[str], subject: str, reg: Registration, *, timeout: float = 2.0) -> bytes:
    """Connect, publish one registration on `subject`, flush, close. Returns the payload sent."""
    payload = encode_registration(reg)
    nc = await connect(urls, timeout=timeout)
    try:
        await publish(nc, subject, payload)
    finally:
        await nc.close()
    return payload


async def publish_every(urls: list[str], subject: str, reg: Registration, interval: float, *,
                        timeout: float = 2.0, on_sent=None) -> None:
    """Keep-alive: publish now and every `interval` seconds until cancelled, like a running app.

    The first connection must succeed (NatsUnavailable otherwise); later outages are logged and retried
    on the next tick.
    """
    payload = encode_registration(reg)
    nc: Client | None = await connect(urls, timeout=timeout)
    me = asyncio.current_task()
    try:
        while True:
            if me is not None and me.cancelling():
                # a cancel (Ctrl-C) that Python 3.11's wait_for inside nats-py's flush swallowed, handing back
                # the flush's result instead (portico.tasks.cancel_and_wait): stop as if it had arrived
                raise asyncio.CancelledError
            try:
                if nc is None or nc.is_closed:
                    nc = await connect(urls, timeout=timeout)
                    log.warning("reconnected to NATS")
                await publish(nc, subject, payload)
                if on_sent is not None:
                    on_sent(payload)
            except NatsUnavailable as err:
                log.warning("%s; retrying in %ss", err, interval)
            except Exception as err:
                log.warning("publish on %s failed: %s; retrying in %ss", subject, err, interval)
                if nc is not None and not nc.is_closed:
                    await nc.close()
                nc = None
            await asyncio.sleep(interval)
    finally:
        if nc is not None and not nc.is_closed:
            await nc.close()


__all__ = ["REGISTER", "UNREGISTER", "NatsUnavailable", "connect", "publish", "publish_every", "publish_once"]
