"""AstroHunter's detection engine: plain functions on arrays, no services.

Stages, one module each: ``io`` (read FITS), ``align`` (common pixel grid),
``difference`` (background, template, difference images), ``detect``
(per-frame candidates), ``link`` (tracklets), ``fit`` (detailed detector),
``report`` (tracks contract, MPC report), ``search`` (the chain), and
``simulate`` (realistic synthetic fields with truth).
"""

__version__ = "0.1.0"
