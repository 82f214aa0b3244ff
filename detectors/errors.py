"""Errors a user can act on: each names the file or setting and the fix."""

from __future__ import annotations

__all__ = ["InputError", "RegistrationError"]


class InputError(ValueError):
    """Input that cannot be searched: a bad file, too few frames, a bad option.

    The message names the file (or option) and says what is wrong with it, so
    the command line can print it without a traceback.
    """


class RegistrationError(InputError):
    """A frame whose stars do not match the reference frame's.

    Attributes
    ----------
    frame : str
        Name of the frame that could not be registered, so a caller can
        leave it out (``--skip-bad``) and search the rest.
    """

    def __init__(self, message: str, *, frame: str) -> None:
        super().__init__(message)
        self.frame = frame
