"""A small file written whole, or not at all.

    replace_file(path, data)                          # a reader sees the old file or the new one
    replace_file(path, data, durable=True)            # ... and a crash keeps one of the two
    replace_file(path, text, mode=0o644, dir_mode=0o700)

The data goes to a temporary file beside `path` (`.NAME.PID.new`: never another process's),
renamed over `path` once written. For the state files of sched, pcontrol and the agent (options,
marks, a probe's state, a pull probe's record, a compacted log, the agent's cached copy, the
parser's cache). Standard library only (pclient is copied to agents' hosts).
"""

from __future__ import annotations

import os
from typing import Union

__all__ = ["replace_file"]


def replace_file(path: Union[str, "os.PathLike[str]"], data: Union[bytes, str], *, mode: int = 0o666,
                 durable: bool = False, dir_mode: Union[int, None] = None) -> None:
    """Write `data` (text is UTF-8) to `path`, a file of `mode` less the umask, as the module
    says. `durable`: fsync before the rename. `dir_mode`: make the missing directories first,
    with that mode. Raises OSError; the temporary file is then removed."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    if dir_mode is not None:
        os.makedirs(head or ".", mode=dir_mode, exist_ok=True)
    temp = os.path.join(head, ".%s.%d.new" % (name, os.getpid()))
    body = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
