"""Which code this agent is: a digest of the pclient sources, sent in the hello.

pcontrol compares the `build` of an agent's hello with the digest of its own pclient: a
different build is an agent of another version, never used silently (see pcontrol.hosts).
The digest covers every module of the package (name and bytes), so it changes with any
edit, not only with AGENT_VERSION. An agent sent by pcontrol (pcontrol.bootstrap) runs
from a zip that carries the digest in `_bundled.py`, computed from the same files before
they were zipped; an installed agent hashes its own files. Standard library only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, List, Tuple

__all__ = ["BUNDLED_MODULE", "code_digest", "digest_of", "source_files"]

#: The module a bundle adds to the package; not part of the digest.
BUNDLED_MODULE = "_bundled.py"


def source_files(package_dir: Path) -> List[Tuple[str, bytes]]:
    """The package's modules as (file name, bytes), sorted by name."""
    return [(path.name, path.read_bytes()) for path in sorted(package_dir.glob("*.py"))
            if path.name != BUNDLED_MODULE]


def digest_of(files: Iterable[Tuple[str, bytes]]) -> str:
    """sha256 (hex) of the files' names and contents."""
    digest = hashlib.sha256()
    for name, data in files:
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


_digest: "str | None" = None


def code_digest() -> str:
    """The digest of the code this process runs (computed once)."""
    global _digest
    if _digest is None:
        try:
            from ._bundled import DIGEST  # type: ignore[import-not-found]
            _digest = str(DIGEST)
        except ImportError:
            _digest = digest_of(source_files(Path(__file__).resolve().parent))
    return _digest
