"""The Dramatiq broker: RabbitMQ for services, in-process for the embedded mode.

Imported before any actor module, so every actor binds to this broker.
``ASTROHUNTER_BROKER=memory`` (what ``astrohunter serve`` and ``search``
set) selects Dramatiq's in-process ``StubBroker``, worked by threads of the
same process: the same actors, no RabbitMQ.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from .config import get_settings

__all__ = ["QUEUES", "broker"]

#: One queue per stage, so each service scales alone.
QUEUES = ("download", "data", "fast_detect", "detailed_detect")


def _make_broker() -> dramatiq.Broker:
    settings = get_settings()
    if settings.broker_kind == "rabbitmq":
        made: dramatiq.Broker = RabbitmqBroker(url=settings.rabbitmq_url, confirm_delivery=True)
    else:
        made = StubBroker()
    made.add_middleware(CurrentMessage())
    return made


broker = _make_broker()
dramatiq.set_broker(broker)
