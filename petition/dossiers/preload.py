"""What the dossier pools' forkserver loads once, to share with every process it forks.

The forkserver imports this module (`render_pool.FORKSERVER_PRELOAD`); the application
never does. It imports weasyprint, pypdf and pyHanko, loads the dossier's fonts, and then
moves everything it made to the garbage collector's permanent generation (`gc.freeze`).
Without that, the first collection in each forked process wrote to the header of every
object inherited from the server, so the kernel copied every page holding one: each pool
process held its own ~75 MiB copy of the libraries (PSS), instead of sharing the server's.
"""

from __future__ import annotations

import gc

import pyhanko.sign  # noqa: F401 - loaded here to be shared
import pypdf  # noqa: F401
import weasyprint  # noqa: F401

from petition.dossiers.typesetting import load_fonts

load_fonts()
gc.collect()
gc.freeze()
