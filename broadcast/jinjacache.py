"""Jinja's own cache of compiled templates, kept between processes.

Compiling the templates a warning renders (its message's sections, the page's) cost a fresh `broadcast warn` about
30 ms of every run; Jinja keeps the compiled code in a bytecode cache of its own, checked against each template's
text, so a changed template is compiled again and the same text never is.
"""

from __future__ import annotations

import contextlib
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2.bccache import Bucket, BytecodeCache


@cache
def bytecode_cache(kind: str) -> BytecodeCache | None:
    """The cache for one environment's templates (`kind` keeps environments with different settings apart), in
    $XDG_CACHE_HOME/broadcast (else ~/.cache/broadcast), one folder per Jinja version; None where no folder can be
    made (the templates are then compiled in each process, as before)."""
    import jinja2
    from jinja2 import FileSystemBytecodeCache

    class Quiet(FileSystemBytecodeCache):
        """A cache that cannot be read or written is no cache, never an error: the warning goes out regardless."""

        def load_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError):
                super().load_bytecode(bucket)

        def dump_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        folder = home / "broadcast" / f"jinja-{jinja2.__version__}"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (OSError, RuntimeError):  # RuntimeError: no home directory to be found
        return None
    return Quiet(str(folder), f"{kind}-%s.cache")
