"""Every stage actor, for a worker that serves all queues (``dramatiq app.actors.all``)."""

from .data import ingest
from .detailed_detect import detailed_detect
from .download import download
from .fast_detect import fast_detect

__all__ = ["detailed_detect", "download", "fast_detect", "ingest"]
