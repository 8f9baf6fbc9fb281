"""mer: the science of facial micro-expression analysis.

Decoding, face alignment, optical-flow motion, apex spotting, Action Unit scoring, DSSI
dynamic images and (with :mod:`mer.models`) SMA-STN emotion recognition. This package
imports nothing from web or queue code; ``service/`` and ``workers/`` wrap it.
"""

__version__ = "0.1.0"
