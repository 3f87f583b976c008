"""Files: `file`, `glob`, `pwd`, `cd` and the channel commands (`open`, `gets`, `read`, `eof`,
`flush`, `seek`, `tell`, `close`), as Tcl 8.6 has them on Unix; `puts` is in core.

    set ch [open report.txt a]; puts $ch "$job done"; close $ch
    if {![file exists $input]} { skip }
    foreach f [glob -nocomplain -directory /data/in *.csv] { ... }

Paths are strings: `file join`, `split`, `dirname`, `tail`, `rootname` and `extension` work on
the text as Tcl does (a component that starts with `~` is a home directory; `file split` writes
a later one `./~x`). Commands that reach the file system expand a leading `~` as Tcl 8.6 does.
Errors are Tcl's (`could not read "x": no such file or directory`). The open channels are
the interpreter's (psched.lang.channels: their names, text and closing).

shutil is loaded by the commands that copy or delete trees, at their first call (start-up).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from ..args import MAX_STRING, get_int
from ..channels import os_error
from ..errors import ScriptError
from ..patterns import glob_match
from ..registry import BUILTINS
from ..tcllist import join_list, split_list

cmd = BUILTINS.command
file = BUILTINS.ensemble("file", "file names and the file system: exists, join, dirname, tail, delete, mkdir, ...")


# --- names ---------------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """`file split`: "/" first for an absolute path, then the non-empty components; a `~x`
    after the first is written `./~x` (else it would name a home directory)."""
    parts = [p for p in path.split("/") if p]
    if path.startswith("/"):
        parts.insert(0, "/")
    return [p if k == 0 or not p.startswith("~") else "./" + p for k, p in enumerate(parts)]


def join_path(names: list[str]) -> str:
    """`file join`: an absolute name (or `~x`) starts the path again."""
    parts: list[str] = []
    for name in names:
        pieces = split_path(name)
        if len(pieces) > 1 and pieces[0] == "." and pieces[1].startswith("./~"):  # (`./~x`: the `.` is the escape)
            pieces = pieces[1:]
        for k, part in enumerate(pieces):
            if part == "/" or (k == 0 and part.startswith("~")):
                parts = [part]
            elif part.startswith("./~") and parts:
                parts.append(part[2:])
            else:
                parts.append(part)
    if not parts:
        return ""
    if parts[0] == "/":
        return "/" + "/".join(parts[1:])
    return "/".join(parts)


def _native(path: str) -> str:
    """The name the system knows: a leading `~` or `~user` expanded, as Tcl 8.6 does."""
    if path.startswith("~"):
        expanded = os.path.expanduser(path)
        if expanded.startswith("~"):
            user = path[1:].split("/", 1)[0]
            raise ScriptError(f'user "{user}" doesn\'t exist')
        return expanded
    return path


def _dirname(path: str) -> str:
    parts = split_path(path)
    if len(parts) <= 1:
        if parts and parts[0].startswith("~"):
            return os.path.dirname(_native(parts[0])) or "/"
        return "/" if path.startswith("/") else "."
    return join_path(parts[:-1])


def _tail(path: str) -> str:
    parts = split_path(path)
    if not parts or parts[-1] == "/":
        return ""
    if len(parts) == 1 and parts[0].startswith("~"):
        return os.path.basename(_native(parts[0]))
    return parts[-1]


def _extension(path: str) -> str:
    dot = path.rfind(".")
    return "" if dot < 0 or "/" in path[dot:] else path[dot:]


@file.sub("file join name ?name ...?", "join names into one path (an absolute name starts it again)")
def file_join(interp: Any, argv: list[str]) -> str:
    return join_path(argv[2:])


@file.sub("file split name", "the components of a path, as a list")
def file_split(interp: Any, argv: list[str]) -> str:
    return join_list(split_path(argv[2]))


@file.sub("file dirname name", "the path without its last component (`.` if none)")
def file_dirname(interp: Any, argv: list[str]) -> str:
    return _dirname(argv[2])


@file.sub("file tail name", "the last component of a path")
def file_tail(interp: Any, argv: list[str]) -> str:
    return _tail(argv[2])


@file.sub("file extension name", "from the last dot of the last component on (`.txt`), or empty")
def file_extension(interp: Any, argv: list[str]) -> str:
    return _extension(argv[2])


@file.sub("file rootname name", "the path without its extension")
def file_rootname(interp: Any, argv: list[str]) -> str:
    path = argv[2]
    return path[: len(path) - len(_extension(path))]


@file.sub("file normalize name", "the absolute path, `.` and `..` removed and links of its directories resolved")
def file_normalize(interp: Any, argv: list[str]) -> str:
    if not argv[2]:
        return ""
    path = os.path.join(os.getcwd(), _native(argv[2]))
    path = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    head, tail = os.path.split(path)
    if tail in ("", ".."):  # (`..` after a link is the link's target's parent, as in Tcl)
        return os.path.realpath(path)
    return os.path.join(os.path.realpath(head), tail)


@file.sub("file nativename name", "the name as the system writes it (`~` expanded)")
def file_nativename(interp: Any, argv: list[str]) -> str:
    return _native(argv[2])


# --- about files ---------------------------------------------------------------------------------


def _stat(path: str, follow: bool = True) -> os.stat_result:
    try:
        return os.stat(_native(path)) if follow else os.lstat(_native(path))
    except OSError as err:
        raise os_error(f'could not read "{path}"', err) from None


def _test(what: Any) -> Any:
    def sub(interp: Any, argv: list[str]) -> str:
        try:
            return "1" if what(_native(argv[2])) else "0"
        except (OSError, ValueError):  # (a name with a NUL byte)
            return "0"

    return sub


file.sub("file exists name", "1 if the file exists")(_test(os.path.exists))
file.sub("file isfile name", "1 if it is a file (or a link to one)")(_test(os.path.isfile))
file.sub("file isdirectory name", "1 if it is a directory (or a link to one)")(_test(os.path.isdir))
file.sub("file readable name", "1 if this process may read it")(_test(lambda p: os.access(p, os.R_OK)))
file.sub("file writable name", "1 if this process may write it")(_test(lambda p: os.access(p, os.W_OK)))
file.sub("file executable name", "1 if this process may run it (or enter the directory)")(
    _test(lambda p: os.access(p, os.X_OK)))


@file.sub("file size name", "its size in bytes")
def file_size(interp: Any, argv: list[str]) -> str:
    return str(_stat(argv[2]).st_size)


@file.sub("file mtime name ?time?", "when it was last changed, in seconds since 1970 (or set that time)")
def file_mtime(interp: Any, argv: list[str]) -> str:
    if len(argv) == 4 and not _dry_run(interp, argv):
        when = get_int(argv[3])
        try:
            os.utime(_native(argv[2]), (_stat(argv[2]).st_atime, when))
        except OSError as err:
            raise os_error(f'could not set modification time for file "{argv[2]}"', err) from None
    return str(int(_stat(argv[2]).st_mtime))


_TYPES = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "link"),
          (stat.S_ISCHR, "characterSpecial"), (stat.S_ISBLK, "blockSpecial"), (stat.S_ISFIFO, "fifo"),
          (stat.S_ISSOCK, "socket"))


@file.sub("file type name", "file, directory, link, characterSpecial, blockSpecial, fifo or socket")
def file_type(interp: Any, argv: list[str]) -> str:
    mode = _stat(argv[2], follow=False).st_mode
    return next((name for test, name in _TYPES if test(mode)), "unknown")


@file.sub("file channels ?pattern?", "the names of the open channels (that match a glob pattern)")
def file_channels(interp: Any, argv: list[str]) -> str:
    names = interp.channels.names()
    return join_list([n for n in names if len(argv) < 3 or glob_match(argv[2], n)])


# --- changing the file system --------------------------------------------------------------------


def _dry_run(interp: Any, argv: list[str]) -> bool:
    """In a simulation (psched.lang.channels: dry_run), say what the command would do instead."""
    tell = interp.channels.dry_run
    if tell is None:
        return False
    tell(join_list(argv))
    return True


def _flags(argv: list[str], start: int, allowed: tuple[str, ...]) -> tuple[bool, list[str]]:
    """`-force` and `--` before the names; the rest of the words."""
    force, i = False, start
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--":
            i += 1
            break
        if argv[i] not in allowed:
            raise ScriptError(f'bad option "{argv[i]}": must be {" ".join(allowed)} or --')
        force = True
        i += 1
    return force, argv[i:]


@file.sub("file delete ?-force? ?--? ?name ...?", "delete files and empty directories (-force: full ones too)")
def file_delete(interp: Any, argv: list[str]) -> str:
    force, names = _flags(argv, 2, ("-force",))
    if _dry_run(interp, argv):
        return ""
    for name in names:
        path = _native(name)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            raise os_error(f'error deleting "{name}"', err) from None
        try:
            if not stat.S_ISDIR(mode):
                os.unlink(path)
            elif force:
                import shutil  # (only a forced delete of a directory needs it: start-up)

                shutil.rmtree(path)
            else:
                os.rmdir(path)
        except OSError as err:
            raise os_error(f'error deleting "{name}"', err) from None
    return ""


@file.sub("file mkdir ?dir ...?", "make directories, with their parents (existing ones are fine)")
def file_mkdir(interp: Any, argv: list[str]) -> str:
    if _dry_run(interp, argv):
        return ""
    for name in argv[2:]:
        path = _native(name)
        if os.path.isdir(path):
            continue
        if os.path.lexists(path):
            raise ScriptError(f'can\'t create directory "{name}": file already exists')
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as err:
            if err.errno == errno.ENOTDIR:  # Tcl names the file in the way
                parts = split_path(name)
                blocking = next((join_path(parts[:k]) for k in range(1, len(parts))
                                 if os.path.lexists(_native(join_path(parts[:k])))
                                 and not os.path.isdir(_native(join_path(parts[:k])))), name)
                raise ScriptError(f'can\'t create directory "{blocking}": file already exists') from None
            failed = name if err.filename in (None, path) else err.filename  # (Tcl names the one it could not make)
            raise os_error(f'can\'t create directory "{failed}"', err) from None
    return ""


def _targets(argv: list[str], verb: str) -> tuple[bool, list[tuple[str, str, str]]]:
    """(-force, [(source, native source, native target)]) of `file rename|copy`."""
    force, names = _flags(argv, 2, ("-force",))
    usage = f"file {argv[1]} ?-force? ?--? source target"
    if len(names) < 2:
        raise ScriptError(f'wrong # args: should be "{usage}" or "file {argv[1]} ?-force? ?--? source ?source ...? targetDir"')
    *sources, target = names
    native = _native(target)
    into = os.path.isdir(native)  # (a directory takes the sources in)
    if len(sources) > 1 and not into:
        raise ScriptError(f'error {verb}: target "{target}" is not a directory')
    pairs = []
    for source in sources:
        src = _native(source)
        if not os.path.lexists(src):
            raise ScriptError(f'error {verb} "{source}": no such file or directory')
        dst = os.path.join(native, os.path.basename(src.rstrip("/"))) if into else native
        if os.path.lexists(dst) and not force:
            shown = target if not into else join_path([target, _tail(source)])
            raise ScriptError(f'error {verb} "{source}" to "{shown}": file already exists')
        pairs.append((source, src, dst))
    return force, pairs


@file.sub("file rename ?-force? ?--? source ?source ...? target", "rename or move files (-force: over existing ones)")
def file_rename(interp: Any, argv: list[str]) -> str:
    _, pairs = _targets(argv, "renaming")
    if _dry_run(interp, argv):
        return ""
    for source, src, dst in pairs:
        try:
            os.replace(src, dst)
        except OSError as err:
            if err.errno == errno.EXDEV:  # another file system
                import shutil  # (a move across file systems copies: start-up)

                try:
                    shutil.move(src, dst)
                    continue
                except OSError as err2:
                    err = err2
            raise os_error(f'error renaming "{source}"', err) from None
    return ""


@file.sub("file copy ?-force? ?--? source ?source ...? target", "copy files or directories (-force: over existing ones)")
def file_copy(interp: Any, argv: list[str]) -> str:
    _, pairs = _targets(argv, "copying")
    if _dry_run(interp, argv):
        return ""
    import shutil  # (copying needs it: loaded at the first copy, start-up)

    for source, src, dst in pairs:
        try:
            if os.path.isdir(src) and not os.path.islink(src):
                if os.path.isdir(dst):
                    shutil.rmtree(dst)
                shutil.copytree(src, dst, symlinks=True)
            else:
                shutil.copy2(src, dst, follow_symlinks=False)
        except OSError as err:
            raise os_error(f'error copying "{source}"', err) from None
    return ""


# --- the working directory -----------------------------------------------------------------------


@cmd("pwd", "the working directory")
def cmd_pwd(interp: Any, argv: list[str]) -> str:
    try:
        return os.getcwd()
    except OSError as err:
        raise os_error("error getting working directory name", err) from None


@cmd("cd ?dirName?", "change the working directory of sched (and of the jobs it starts); home if none")
def cmd_cd(interp: Any, argv: list[str]) -> str:
    if len(argv) == 2:
        name = argv[1]
    else:
        name = os.environ.get("HOME", "")
        if not name:
            raise ScriptError("couldn't find HOME environment variable to expand path")
    try:
        os.chdir(_native(name))
    except OSError as err:
        raise os_error(f'couldn\'t change working directory to "{name}"', err) from None
    return ""


# --- glob ----------------------------------------------------------------------------------------


def expand_braces(pattern: str) -> list[str]:
    """Tcl's `{a,b}` alternatives, nested ones too: `x{a,b{c,d}}` -> xa xbc xbd."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "{":
            break
        i += 1
    else:
        return [pattern]
    depth, j, cuts = 0, i, []
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        elif c == "," and depth == 1:
            cuts.append(j)
        j += 1
    else:
        raise ScriptError("unmatched open-brace in file name")
    bounds = [i, *cuts, j]
    head, rest = pattern[:i], pattern[j + 1:]
    out: list[str] = []
    for a, b in zip(bounds, bounds[1:]):
        for tail in expand_braces(rest):
            out.extend(expand_braces(head + pattern[a + 1:b] + tail))
    return out


_GLOB_OPTIONS = ("-directory", "-join", "-nocomplain", "-path", "-tails", "-types", "--")
_TYPE_LETTERS = {"f": stat.S_ISREG, "d": stat.S_ISDIR, "l": stat.S_ISLNK, "p": stat.S_ISFIFO,
                 "s": stat.S_ISSOCK, "b": stat.S_ISBLK, "c": stat.S_ISCHR}
_PERMISSIONS = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def _matches(directory: str, pattern: str, hidden: bool = False) -> list[str]:
    """The names (relative to `directory`, "" for the working one) that `pattern` matches."""
    trailing = pattern.endswith("/")
    absolute = pattern.startswith("/")
    components = [c for c in pattern.split("/") if c]
    found = ["/"] if absolute else [""]
    for k, comp in enumerate(components):
        last = k == len(components) - 1
        nxt: list[str] = []
        if not any(c in comp for c in "*?["):
            name = _unescape(comp)
            nxt = [f"{f}/{name}" if f and not f.endswith("/") else f + name for f in found]
            if not last or trailing:
                nxt = [f for f in nxt if os.path.isdir(os.path.join(directory, f))]
        else:
            for f in found:
                where = os.path.join(directory, f) if directory or f else "."
                try:
                    entries = os.listdir(_native(where) if where.startswith("~") else where)
                except OSError:
                    continue
                if comp.startswith(".") or hidden:
                    entries = [".", "..", *entries]
                else:
                    entries = [e for e in entries if not e.startswith(".")]
                for e in entries:
                    if glob_match(comp, e):
                        path = f"{f}/{e}" if f and not f.endswith("/") else f + e
                        if (not last or trailing) and not os.path.isdir(os.path.join(directory, path)):
                            continue
                        nxt.append(path)
        found = nxt
    if not components:
        return [p for p in found if p and os.path.lexists(os.path.join(directory, p) or ".")]
    found = [f for f in found if os.path.lexists(os.path.join(directory, f) if directory else f)]
    return [f + "/" for f in found] if trailing else found


@cmd("glob ?-nocomplain? ?-directory dir? ?-types typeList? ?-tails? ?--? ?pattern ...?",
     "the names of the files that match patterns (`*?[]`, `{a,b}`), in directory order")
def cmd_glob(interp: Any, argv: list[str]) -> str:
    opts: dict[str, str | bool] = {}
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        if word == "--":
            i += 1
            break
        matches = [o for o in _GLOB_OPTIONS if o.startswith(word)]
        if word not in _GLOB_OPTIONS and len(matches) != 1:
            raise ScriptError(f'bad option "{word}": must be -directory, -join, -nocomplain, -path, -tails, -types, or --')
        name = word if word in _GLOB_OPTIONS else matches[0]  # (`--` itself ended the loop above)
        if name in ("-join", "-path"):
            raise ScriptError(f'glob: option "{name}" is not supported')
        if name in ("-directory", "-types"):
            if i + 1 >= len(argv):
                raise ScriptError(f'missing argument to "{name}"')
            opts[name] = argv[i + 1]
            i += 2
        else:
            opts[name] = True
            i += 1
    patterns = argv[i:]
    if opts.get("-tails") and "-directory" not in opts:
        raise ScriptError('"-tails" must be used with either "-directory" or "-path"')
    kinds, perms, hidden = [], [], False
    for letter in split_list(str(opts.get("-types", ""))):
        if letter in _TYPE_LETTERS:
            kinds.append(_TYPE_LETTERS[letter])
        elif letter in _PERMISSIONS:
            perms.append(_PERMISSIONS[letter])
        elif letter == "hidden":
            hidden = True
        else:
            raise ScriptError(f'bad argument to "-types": {letter}')
    directory = str(opts.get("-directory", ""))
    native_dir = _native(directory) if directory else ""
    result: list[str] = []
    for pattern in patterns:
        for alternative in expand_braces(pattern):
            native = _native(alternative) if alternative.startswith("~") else alternative
            for rel in _matches(native_dir, native, hidden):
                real = os.path.join(native_dir, rel) if native_dir else rel
                if kinds or perms or hidden:
                    if hidden and not os.path.basename(rel.rstrip("/")).startswith("."):
                        continue
                    try:
                        mode = os.lstat(real).st_mode
                        if not stat.S_ISLNK(mode) or stat.S_ISLNK not in kinds:
                            mode = os.stat(real).st_mode
                    except OSError:
                        continue
                    if kinds and not any(test(mode) for test in kinds):
                        continue
                    if not all(os.access(real, p) for p in perms):
                        continue
                result.append(rel if opts.get("-tails") or not directory else join_path([directory, rel]))
    if not result and not opts.get("-nocomplain"):
        plural = "s" if len(patterns) != 1 else ""
        err = ScriptError(f'no files matched glob pattern{plural} "{" ".join(patterns)}"')
        err.errorcode = "TCL OPERATION GLOB NOMATCH"  # as Tcl's
        raise err
    return join_list(result)


# --- channels ------------------------------------------------------------------------------------


def _permissions(text: str) -> int:
    if len(text) > 1 and text.startswith("0") and text.isdigit():  # Tcl's octal 0644
        try:
            return int(text, 8)
        except ValueError:
            pass
    return get_int(text)


@cmd("open fileName ?access? ?permissions?", "open a file: access r r+ w w+ a a+ (or {WRONLY CREAT ...}); its channel")
def cmd_open(interp: Any, argv: list[str]) -> str:
    name = argv[1]
    if name.startswith("|"):
        raise ScriptError(f'open: command pipelines ("|...") are not supported: use exec')
    access = argv[2] if len(argv) > 2 else "r"
    permissions = _permissions(argv[3]) if len(argv) > 3 else 0o666
    return interp.channels.open(interp, name, access, permissions)


@cmd("gets channelId ?varName?", "read a line: the line, or with varName its length (-1 at the end) and the line in varName")
def cmd_gets(interp: Any, argv: list[str]) -> str:
    line = interp.channels.get(interp, argv[1]).read_line(MAX_STRING)
    if len(argv) == 2:
        return line or ""
    interp.set_var(argv[2], line or "")
    return "-1" if line is None else str(len(line))


@cmd("read ?-nonewline? channelId", "read the rest of a channel (without its last newline); `read channelId numChars` reads at most so many")
def cmd_read(interp: Any, argv: list[str]) -> str:
    if len(argv) == 3 and argv[1] == "-nonewline":
        text = interp.channels.get(interp, argv[2]).read(limit=MAX_STRING)
        return text[:-1] if text.endswith("\n") else text
    count = None
    if len(argv) == 3:
        count = get_int(argv[2], "non-negative integer") if argv[2].strip().lstrip("+").isdigit() else None
        if count is None or count < 0:
            raise ScriptError(f'expected non-negative integer but got "{argv[2]}"')
    return interp.channels.get(interp, argv[1]).read(count, MAX_STRING)


@cmd("eof channelId", "1 if the last read met the end of the channel")
def cmd_eof(interp: Any, argv: list[str]) -> str:
    return "1" if interp.channels.get(interp, argv[1]).eof else "0"


@cmd("flush channelId", "write out what the channel holds")
def cmd_flush(interp: Any, argv: list[str]) -> str:
    interp.channels.get(interp, argv[1]).flush(interp)
    return ""


@cmd("close channelId", "close a channel (what it holds is written out)")
def cmd_close(interp: Any, argv: list[str]) -> str:
    interp.channels.close(interp, argv[1])
    return ""


_ORIGINS = {"start": os.SEEK_SET, "current": os.SEEK_CUR, "end": os.SEEK_END}


@cmd("seek channelId offset ?origin?", "move in a channel: offset in bytes from start, current or end")
def cmd_seek(interp: Any, argv: list[str]) -> str:
    channel = interp.channels.get(interp, argv[1])
    offset = get_int(argv[2])
    origin = argv[3] if len(argv) == 4 else "start"
    if origin not in _ORIGINS:
        raise ScriptError(f'bad origin "{origin}": must be start, current, or end')
    channel.seek(offset, _ORIGINS[origin])
    return ""


@cmd("tell channelId", "where in the channel the next read or write is, in bytes (-1 if it cannot say)")
def cmd_tell(interp: Any, argv: list[str]) -> str:
    return str(interp.channels.get(interp, argv[1]).tell())


_FCONFIGURE = ("-blocking", "-buffering", "-buffersize", "-encoding", "-eofchar", "-translation")
_TRANSLATIONS = ("auto", "binary", "cr", "lf", "crlf", "platform")


def _option_value(channel: Any, option: str) -> str:
    if option == "-translation":
        ends = [t for t in channel.translation if t]
        return join_list(ends) if len(ends) == 2 else ends[0] if ends else "auto"
    return {"-blocking": "1", "-buffering": channel.buffering, "-buffersize": "4096", "-encoding": channel.encoding,
            "-eofchar": ""}[option]


@cmd("fconfigure channelId ?-option value ...?",
     "a channel's options, or set them: -translation auto|lf|crlf|binary, -encoding, -buffering full|line|none")
def cmd_fconfigure(interp: Any, argv: list[str]) -> str:
    channel = interp.channels.get(interp, argv[1])
    words = argv[2:]
    names = []
    for word in words[::2]:
        matches = [o for o in _FCONFIGURE if o.startswith(word)] if word.startswith("-") else []
        if word not in _FCONFIGURE and len(matches) != 1:
            raise ScriptError(f'bad option "{word}": should be one of -blocking, -buffering, -buffersize, '
                              '-encoding, -eofchar, or -translation')
        names.append(word if word in _FCONFIGURE else matches[0])
    if not words:
        return join_list([piece for name in _FCONFIGURE for piece in (name, _option_value(channel, name))])
    if len(words) == 1:
        return _option_value(channel, names[0])
    if len(words) % 2:
        raise ScriptError('wrong # args: should be "fconfigure channelId ?-option value ...?"')
    for name, value in zip(names, words[1::2]):
        if name == "-translation":
            ends = split_list(value)
            if not 1 <= len(ends) <= 2 or any(t not in _TRANSLATIONS for t in ends):
                bad = next((t for t in ends if t not in _TRANSLATIONS), value)
                raise ScriptError(f"bad value for -translation: must be one of auto, binary, cr, lf, crlf, or platform"
                                  if bad else f'bad value "{value}" for -translation')
            ends = [("lf" if t == "platform" else t) for t in ends]
            channel.configure(translation=ends * 2 if len(ends) == 1 else ends)
        elif name == "-encoding":
            channel.configure(encoding=value)
        elif name == "-buffering":
            if value not in ("full", "line", "none"):
                raise ScriptError(f'bad value for -buffering: must be one of full, line, or none')
            channel.buffering = value
        elif name == "-blocking":
            if value not in ("1", "true", "yes", "on"):
                raise ScriptError("fconfigure: non-blocking channels are not supported")
        elif name == "-buffersize":
            get_int(value)
        elif name == "-eofchar" and value:
            raise ScriptError("fconfigure: -eofchar is not supported")
    return ""
