"""Channels: the files a script opens (`open`, `gets`, `puts`, `close`), as tclsh has them.

    interp.channels.open(interp, path, "a")      -> "file5"   (Tcl names a channel by its fd)
    channel = interp.channels.get(interp, name)  stdin, stdout, stderr or an open file

The table lives on the interpreter (Interp.channels); the command modules that read and write
channels (psched.lang.commands.core's `puts`, psched.lang.commands.files) share it through here.

Text is as tclsh reads and writes it: UTF-8, a byte that is not UTF-8 read as its Latin-1
character (SCRIPT_ERRORS), lines read in Tcl's `auto` translation (\\n, \\r\\n and \\r all end a
line) and written with \\n. Files are opened close-on-exec (Python's default), so a job does
not inherit them. sched runs for months: a script that opens and never closes would leak
descriptors, so the table says so (once, in the log) when it holds more than MANY_CHANNELS,
and the first open adds an exit hook that closes (and so flushes) every channel still open.

A simulation (`sched --simulate`) sets `dry_run`: then nothing changes the file system. A file
opened for writing is kept in memory (it starts from the file's text unless truncated) and the
commands that would create, delete or move files tell `dry_run` what they would do instead.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

from .errors import ScriptError
from .lazylog import lazy_logger
from .scripttext import SCRIPT_ERRORS
from .tcllist import join_list, split_list

__all__ = ["Channel", "Channels", "MANY_CHANNELS", "os_error", "os_message", "STANDARD", "stdin_reads_from"]

log = lazy_logger(__name__)

MANY_CHANNELS = 100
"""Open channels beyond which the table logs (once) that a script may be leaking them."""

STANDARD = ("stdin", "stdout", "stderr")

_MESSAGES = {
    errno.ENOENT: "no such file or directory", errno.EEXIST: "file already exists",
    errno.EISDIR: "illegal operation on a directory", errno.EACCES: "permission denied",
    errno.ENOTEMPTY: "directory not empty", errno.ENOTDIR: "not a directory", errno.EPERM: "not owner",
    errno.EXDEV: "cross-domain link", errno.EBADF: "bad file number",
}


def os_message(err: OSError) -> str:
    """An OSError's reason as Tcl words it (`no such file or directory`)."""
    return _MESSAGES.get(err.errno or 0) or (err.strerror or str(err)).lower()


def os_error(what: str, err: OSError) -> ScriptError:
    """The error `WHAT: reason` for an OSError, with Tcl's errorcode `POSIX ENOENT {no such file
    or directory}` (what `try ... trap {POSIX ENOENT}` sees)."""
    reason = os_message(err)
    failure = ScriptError(f"{what}: {reason}")
    failure.errorcode = join_list(["POSIX", errno.errorcode.get(err.errno or 0, "EUNKNOWN"), reason])
    return failure


_ACCESS = {
    "r": os.O_RDONLY, "r+": os.O_RDWR, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
}
_FLAGS = {"RDONLY": os.O_RDONLY, "WRONLY": os.O_WRONLY, "RDWR": os.O_RDWR, "APPEND": os.O_APPEND,
          "CREAT": os.O_CREAT, "EXCL": os.O_EXCL, "TRUNC": os.O_TRUNC, "NOCTTY": os.O_NOCTTY,
          "NONBLOCK": os.O_NONBLOCK}


def access_flags(access: str) -> int:
    """os.open's flags for Tcl's access mode: `r`, `w+`, ... or a list `{WRONLY CREAT}`."""
    if access in _ACCESS:
        return _ACCESS[access]
    if access[:1].isupper():
        words = split_list(access)
        flags, mode = 0, None
        for word in words:  # (as Tcl: the last of RDONLY, WRONLY and RDWR counts)
            if word == "BINARY":
                continue
            if word not in _FLAGS:
                raise ScriptError(f'invalid access mode "{word}": must be RDONLY, WRONLY, RDWR, APPEND, BINARY, '
                                  'CREAT, EXCL, NOCTTY, NONBLOCK, or TRUNC')
            if word in ("RDONLY", "WRONLY", "RDWR"):
                mode = _FLAGS[word]
            else:
                flags |= _FLAGS[word]
        if mode is None:
            raise ScriptError("access mode must include either RDONLY, WRONLY, or RDWR")
        flags |= mode
        return flags
    raise ScriptError(f'illegal access mode "{access}"')


class Channel:
    """One open channel: a text file, or one of the standard streams."""

    def __init__(self, name: str, file: TextIO | None, readable: bool, writable: bool) -> None:
        self.name = name
        self.file = file  # (None for stdout: the interpreter's write sends it where it goes)
        self.readable = readable
        self.writable = writable
        self.eof = False  # the last read met the end, as Tcl's `eof` says
        # fconfigure's settings (Tcl's names): how lines end when read, how when written, the
        # encoding, and when writes go out
        self.translation = ["auto" if readable else "", "lf" if writable else ""]
        self.encoding = "utf-8"
        self.buffering = "full" if name != "stderr" else "none"

    def _reading(self) -> TextIO:
        if not self.readable or self.file is None:
            raise ScriptError(f'channel "{self.name}" wasn\'t opened for reading')
        return self.file

    def _failed(self, doing: str, err: Exception) -> ScriptError:
        reason = os_message(err) if isinstance(err, OSError) else str(err)
        return ScriptError(f'error {doing} "{self.name}": {reason}')

    def read_line(self, limit: int = -1) -> str | None:
        """The next line without its end, or None at the end of the file (Tcl's -1); a line
        longer than `limit` characters is an error (a month-long sched keeps its memory)."""
        file = self._reading()
        try:
            line = file.readline(limit + 1 if limit >= 0 else -1)
        except (OSError, ValueError) as err:
            raise self._failed("reading", err) from None
        if 0 <= limit < len(line):
            raise ScriptError(f'error reading "{self.name}": a line longer than {limit} characters')
        if line.endswith("\n"):
            self.eof = False
            return line[:-2] if self.translation[0] == "crlf" and line.endswith("\r\n") else line[:-1]
        self.eof = True
        return line if line else None

    def read(self, count: int | None = None, limit: int = -1) -> str:
        """The rest of the file, or at most `count` characters; more than `limit` is an error."""
        file = self._reading()
        if limit >= 0 and (count is None or count > limit):
            count, refuse = limit + 1, True
        else:
            refuse = False
        try:
            text = file.read() if count is None else file.read(count)
        except (OSError, ValueError) as err:
            raise self._failed("reading", err) from None
        if refuse and len(text) > limit:
            raise ScriptError(f'error reading "{self.name}": more than {limit} characters')
        self.eof = count is None or len(text) < count
        return text.replace("\r\n", "\n") if self.translation[0] == "crlf" else text

    def write(self, interp: Any, text: str) -> None:
        if not self.writable:
            raise ScriptError(f'channel "{self.name}" wasn\'t opened for writing')
        try:
            if self.file is None:
                interp.write(text)
            else:
                self.file.write(text)
                if self.buffering == "none" or self.buffering == "line" and "\n" in text:
                    self.file.flush()
        except (OSError, ValueError, UnicodeError) as err:  # e.g. `sched script | head`: Tcl's error
            raise self._failed("writing", err) from None

    def flush(self, interp: Any) -> None:
        if not self.writable:
            raise ScriptError(f'channel "{self.name}" wasn\'t opened for writing')
        file = self.file if self.file is not None else interp.stdout
        if hasattr(file, "flush"):
            try:
                file.flush()
            except (OSError, ValueError) as err:
                raise self._failed("flushing", err) from None

    def seek(self, offset: int, origin: int) -> None:
        file = self._file("seek")
        try:
            if origin != os.SEEK_SET:  # (a text file seeks from the start only: its tell is the byte offset)
                base = file.tell() if origin == os.SEEK_CUR else file.seek(0, os.SEEK_END)
                offset += base
            file.seek(max(offset, 0))
        except (OSError, ValueError) as err:
            raise self._failed("during seek on", err) from None
        self.eof = False

    def tell(self) -> int:
        file = self._file("tell")
        try:
            return file.tell()
        except (OSError, ValueError):
            return -1

    def configure(self, translation: list[str] | None = None, encoding: str | None = None) -> None:
        """Read and write with other line ends (Tcl's `auto`, `lf`, `crlf`, `binary`) or another
        encoding (a Python codec; `binary` is Latin-1, a byte per character)."""
        if self.file is None or self.name in STANDARD:
            raise ScriptError(f'fconfigure: the translation and encoding of "{self.name}" are fixed here')
        translation = translation or self.translation
        binary = "binary" in translation
        encoding = "binary" if binary else encoding or self.encoding
        read_end, write_end = (t if t != "binary" else "lf" for t in translation)
        # Python has one newline rule for both directions: the written line end decides when the
        # channel writes (crlf read is done by read_line and read), the read one when it only reads
        if self.writable:
            newline = {"lf": None if self.readable and read_end == "auto" else "\n", "auto": None,
                       "crlf": "\r\n", "cr": "\r"}[write_end]
        else:
            newline = {"auto": None, "lf": "\n", "crlf": "\r\n", "cr": "\r"}[read_end]
        settings = {"encoding": "latin-1" if encoding == "binary" else encoding,
                    "errors": "strict" if encoding == "binary" else SCRIPT_ERRORS, "newline": newline}
        self.file = _rewrapped(self.file, settings)  # type: ignore[arg-type]
        self.translation = [read_end if self.readable else "", write_end if self.writable else ""]
        if binary:
            self.translation = ["lf" if self.readable else "", "lf" if self.writable else ""]
        self.encoding = encoding

    def _file(self, doing: str) -> TextIO:
        if self.file is None or self.name in STANDARD:
            raise ScriptError(f'error during {doing} on "{self.name}": illegal seek')
        return self.file


def _rewrapped(file: io.TextIOWrapper, settings: dict[str, Any]) -> io.TextIOWrapper:
    """The file with new settings; once something has been read (when Python will not change
    them), a new wrapper at the same place."""
    try:
        file.reconfigure(**settings)
        return file
    except (LookupError, ValueError) as err:
        if isinstance(err, LookupError):
            raise ScriptError(f'unknown encoding "{settings["encoding"]}"') from None
    try:
        where = file.tell()
        file.flush()
        buffer = file.detach()
        buffer.seek(where)
    except (OSError, ValueError) as err:
        raise ScriptError(f"fconfigure: cannot change the channel after reading from it: {err}") from None
    return io.TextIOWrapper(buffer, **settings)


class Channels:
    """An interpreter's open channels by name, the standard three included."""

    def __init__(self) -> None:
        self.files: dict[str, Channel] = {}
        self._hooked = False
        self._warned = False
        self._kept = 0  # files kept in memory (dry_run)
        self.dry_run: Callable[[str], None] | None = None
        """Told what would change the file system, instead of its being done (a simulation)."""

    def names(self) -> list[str]:
        return [*STANDARD, *self.files]

    def get(self, interp: Any, name: str) -> Channel:
        channel = self.files.get(name)
        if channel is not None:
            return channel
        if name == "stdout":
            return _stdout
        if name == "stderr":
            return Channel(name, sys.stderr, False, True)
        if name == "stdin":
            return _stdin
        raise ScriptError(f'can not find channel named "{name}"')

    def open(self, interp: Any, path: str, access: str = "r", permissions: int = 0o666) -> str:
        """Open a file as Tcl's `open` does; its channel's name."""
        flags = access_flags(access)
        if self.dry_run is not None and flags & (os.O_WRONLY | os.O_RDWR):
            return self._add(interp, self._in_memory(path, access, flags),
                             flags & os.O_ACCMODE == os.O_RDWR, True)
        try:
            fd = os.open(os.path.expanduser(path), flags, permissions)  # (not inherited by jobs: O_CLOEXEC)
        except OSError as err:
            raise os_error(f'couldn\'t open "{path}"', err) from None
        mode = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        readable, writable = mode != os.O_WRONLY, mode != os.O_RDONLY
        try:
            raw = io.FileIO(fd, "r+" if readable and writable else "r" if readable else "w", closefd=True)
        except OSError as err:  # (a directory: Tcl opens it, and fails at the first read)
            os.close(fd)
            raise os_error(f'couldn\'t open "{path}"', err) from None
        seekable = raw.seekable()
        buffered: Any = (io.BufferedRandom(raw) if readable and writable and seekable else
                         io.BufferedReader(raw) if readable else io.BufferedWriter(raw))
        file = io.TextIOWrapper(buffered, encoding="utf-8", errors=SCRIPT_ERRORS, newline=None)
        return self._add(interp, file, readable, writable, f"file{fd}")

    def _in_memory(self, path: str, access: str, flags: int) -> TextIO:
        """A file opened for writing in a dry run: its text in memory, the file untouched."""
        assert self.dry_run is not None
        native = os.path.expanduser(path)
        exists = os.path.exists(native)
        if not exists and not flags & os.O_CREAT or exists and flags & os.O_EXCL:
            reason = "file already exists" if exists else "no such file or directory"
            raise ScriptError(f'couldn\'t open "{path}": {reason}')
        text = ""
        if exists and not flags & os.O_TRUNC:
            try:
                with open(native, encoding="utf-8", errors=SCRIPT_ERRORS, newline="") as real:
                    text = real.read()
            except OSError as err:
                raise os_error(f'couldn\'t open "{path}"', err) from None
        self.dry_run(f"open {path} {access} (kept in memory)")
        file = io.StringIO(text, newline=None)
        file.seek(0, os.SEEK_END if flags & os.O_APPEND else os.SEEK_SET)
        return file

    def _add(self, interp: Any, file: TextIO, readable: bool, writable: bool, name: str = "") -> str:
        if not name:
            self._kept += 1
            name = f"file{1000 + self._kept}"
        self.files[name] = Channel(name, file, readable, writable)
        if not self._hooked:
            self._hooked = True
            interp.exit_hooks.append(lambda interp: self.close_all())
        if len(self.files) > MANY_CHANNELS and not self._warned:
            self._warned = True
            log.warning("scripts hold %d open channels (opened and never closed?): %s ...", len(self.files),
                        " ".join(list(self.files)[:5]))
        return name

    def close(self, interp: Any, name: str) -> None:
        channel = self.get(interp, name)
        if name in STANDARD:
            if name == "stdout":  # (Tcl closes it; here it stays the interpreter's: flushed only)
                channel.flush(interp)
            return
        del self.files[name]
        assert channel.file is not None
        try:
            channel.file.close()
        except OSError as err:
            raise os_error(f'error closing "{name}"', err) from None

    def close_all(self) -> None:
        """Close every file still open (sched leaves): what a script wrote reaches its file."""
        while self.files:
            _, channel = self.files.popitem()
            try:
                channel.file.close()  # type: ignore[union-attr]
            except OSError as err:
                log.warning("closing %s: %s", channel.name, os_message(err))


class _Stdin(Channel):
    """The process's standard input, read as text as a script file is."""

    def __init__(self) -> None:
        super().__init__("stdin", None, True, False)

    def _reading(self) -> TextIO:
        if self.file is None:
            self.file = sys.stdin
            if isinstance(sys.stdin, io.TextIOWrapper):
                sys.stdin.reconfigure(errors=SCRIPT_ERRORS)
        return self.file


_stdin = _Stdin()


@contextmanager
def stdin_reads_from(source: TextIO) -> Iterator[None]:
    """While inside, the channel stdin reads from `source` (readline and read, as a text file):
    the shell's stream of commands from stdin, so that `gets stdin` takes the line after the
    command being run, as in tclsh."""
    saved, _stdin.file = _stdin.file, source
    try:
        yield
    finally:
        _stdin.file = saved
_stdout = Channel("stdout", None, False, True)  # (writes through the interpreter: no state of its own)
