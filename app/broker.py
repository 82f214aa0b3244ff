"""The Dramatiq broker: RabbitMQ for services, in-process for the embedded mode.

Imported before any actor module, so every actor binds to this broker.
``ASTROHUNTER_BROKER=memory`` (what ``astrohunter serve`` and ``search``
set) selects Dramatiq's in-process ``StubBroker``, worked by threads of the
same process: the same actors, no RabbitMQ.

Every RabbitMQ connection gives up on a broker that keeps it blocked (a
memory or disk alarm) after ``BLOCKED_TIMEOUT_S``, so no publisher waits
forever; `probe` tells whether the broker takes messages right now.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from .config import Settings, get_settings

__all__ = ["BLOCKED_TIMEOUT_S", "QUEUES", "broker", "probe"]

#: One queue per stage, so each service scales alone.
QUEUES = ("download", "data", "fast_detect", "detailed_detect")
#: Seconds a connection may stay blocked by a RabbitMQ resource alarm before it is closed.
BLOCKED_TIMEOUT_S = 10.0
#: Seconds the health probe waits for the broker's confirmation.
PROBE_TIMEOUT_S = 2.0


def connection_url(settings: Settings, *, blocked_timeout_s: float = BLOCKED_TIMEOUT_S) -> str:
    """``RABBITMQ_*`` as an AMQP URL whose connections never wait forever."""
    return (
        f"{settings.rabbitmq_url}?blocked_connection_timeout={blocked_timeout_s:g}"
        f"&socket_timeout=5&stack_timeout={2 * blocked_timeout_s:g}"
        "&connection_attempts=2&retry_delay=1"
    )


def _make_broker() -> dramatiq.Broker:
    settings = get_settings()
    if settings.broker_kind == "rabbitmq":
        made: dramatiq.Broker = RabbitmqBroker(url=connection_url(settings), confirm_delivery=True)
    else:
        made = StubBroker()
    made.add_middleware(CurrentMessage())
    return made


def probe(settings: Settings) -> tuple[bool, str]:
    """Whether the broker takes a message now, and why not.

    Publishes one confirmed message to a route with no queue (RabbitMQ drops
    it): a broker that is down fails to connect, one under a resource alarm
    blocks the publish until ``PROBE_TIMEOUT_S`` closes the connection.
    """
    if settings.broker_kind != "rabbitmq":
        return True, "in-process"
    import pika

    where = f"rabbitmq at {settings.rabbitmq_host}"
    url = connection_url(settings, blocked_timeout_s=PROBE_TIMEOUT_S).replace(
        "connection_attempts=2", "connection_attempts=1"
    )
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("", "astrohunter.health-probe", b"", mandatory=False)
        finally:
            if connection.is_open:
                connection.close()
    except pika.exceptions.ConnectionBlockedTimeout:
        return False, f"{where}: blocked (a memory or disk resource alarm): it takes no messages"
    except Exception as exc:  # any failure to connect or publish means: not usable
        return False, f"{where}: {exc.__class__.__name__}"
    return True, where


broker = _make_broker()
dramatiq.set_broker(broker)
