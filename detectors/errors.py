"""Errors a user can act on: each names the file or setting and the fix."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input that cannot be searched: a bad file, too few frames, a bad option.

    The message names the file (or option) and says what is wrong with it, so
    the command line can print it without a traceback.
    """
