"""Bringing the agent along: pclient's code sent over the ssh connection that starts it.

A host needs sshd, a POSIX login shell and `python3` (3.10 or newer), nothing else. The
default start of an ssh host is `ssh HOST <remote command>`, where the remote command is a
short shell line that finds python3 and runs a small loader (REMOTE_LOADER) given inline
with `python3 -I -c`. The loader and pcontrol then speak a few marker lines before the
agent's hello (`pclient-bootstrap: WORD ...`, matched by agentlink through the
`PreHandshake` seam that `BootstrapStart` implements):

    loader                                    pcontrol
    no-python3 PATH            ------->       DOWN: no python3 on PATH
    python-too-old VERSION EXE ------->       DOWN: which Python it found, which it needs
    cache-hit FILE             ------->       (noted) the cached bundle had the right sha256
    cache-refused FILE         ------->       (noted) it had not: deleted, asks for the code
    send SHA256 SIZE           ------->
                               <-------       the bundle, base64, one line
    cached FILE | cache-unwritable WHY ->     (noted)
    {"type": "hello", ...}     ------->       the agent runs: the usual protocol follows

The bundle is a zip of the pclient package (every module, plus `_bundled.py` naming its
build digest, plus a top-level `__main__.py`), built the same byte for byte from the same
sources (fixed timestamps), so its sha256 names the version: the loader keeps it in
`${XDG_CACHE_HOME:-~/.cache}/pclient/<sha256>/pclient.pyz` and uses that file only if its
bytes hash to the name. The agent is imported from the verified bytes in memory, never
from the file (a file changed after the check cannot run). The same zip, written with a
`#!/usr/bin/env python3` line, is what `pcontrol agent-bundle FILE` writes: a single-file
agent that runs with `python3 FILE ...`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import os
import re
import shlex
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pclient
from pclient.replacefile import replace_file
from pclient.build import BUNDLED_MODULE, digest_of, source_files

from .agentlink import PreludeReply

log = logging.getLogger(__name__)

#: The oldest Python the agent runs on (pyproject's requires-python).
MIN_PYTHON = (3, 10)
#: What starts each marker line of the loader (REMOTE_LOADER's `say` writes it too).
MARKER = b"pclient-bootstrap: "
#: Every zip entry gets this time, so the same sources give the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SHEBANG = b"#!/usr/bin/env python3\n"

#: Runs on the host under `python3 -I -c`; argv: pclient MIN_PYTHON SHA256 SIZE AGENT-ARGS...
#: (the first word only names the process in `ps`).
#: Parsed by any python3 before it checks the version: no syntax newer than 3.0 here.
REMOTE_LOADER = r'''
import base64, hashlib, os, sys
def say(*words):
    os.write(1, ("pclient-bootstrap: " + " ".join(words) + "\n").encode("utf-8", "replace"))
need, sha, size, args = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
if tuple(sys.version_info[:2]) < tuple(int(n) for n in need.split(".")):
    say("python-too-old", "%d.%d.%d" % tuple(sys.version_info[:3]), sys.executable or "python3")
    sys.exit(1)
cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
folder = os.path.join(cache, "pclient", sha)
path = os.path.join(folder, "pclient.pyz")
data = None
try:
    with open(path, "rb") as f:
        data = f.read()
except OSError:
    pass
if data is not None and hashlib.sha256(data).hexdigest() != sha:
    say("cache-refused", path)
    data = None
    try:
        os.unlink(path)
    except OSError:
        pass
if data is None:
    say("send", sha, str(size))
    want, parts = 4 * ((size + 2) // 3) + 1, []
    while want > 0:
        part = os.read(0, want)
        if not part:
            sys.exit(3)
        parts.append(part)
        want -= len(part)
    data = base64.b64decode(b"".join(parts))
    if hashlib.sha256(data).hexdigest() != sha:
        say("bad-transfer")
        sys.exit(1)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        partial = "%s.%d" % (path, os.getpid())
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)
        say("cached", path)
    except OSError as exc:
        say("cache-unwritable", str(exc).replace("\n", " "))
else:
    say("cache-hit", path)
import importlib.abc, importlib.util, io, zipfile
bundle = zipfile.ZipFile(io.BytesIO(data))
names = set(bundle.namelist())
class BundleImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        stem = fullname.replace(".", "/")
        for name, package in ((stem + "/__init__.py", True), (stem + ".py", False)):
            if name in names:
                return importlib.util.spec_from_loader(
                    fullname, self, origin="pclient.pyz/" + name, is_package=package)
        return None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        origin = module.__spec__.origin
        exec(compile(bundle.read(origin[len("pclient.pyz/"):]), origin, "exec"), module.__dict__)
sys.meta_path.insert(0, BundleImporter())
sys.argv = ["pclient"] + args
from pclient.__main__ import main
sys.exit(main(args))
'''

_ZIP_MAIN = b"import sys\nfrom pclient.__main__ import main\nsys.exit(main())\n"


class Bundle:
    """The agent's code as it is sent: a zip, its sha256 (the cache's name), its build.

    The zip (and so its sha256) is made when first asked for: checking a local agent's build
    needs only the digest, and zipping the package costs pcontrol ~15 ms of CPU between a
    local agent's hello and its first job (issue 13)."""

    def __init__(self, build: str, entries: tuple[tuple[str, bytes], ...]):
        self.build = build
        """Digest of the sources (pclient.build): what the agent says in its hello."""
        self.entries = entries

    def __repr__(self) -> str:
        return f"Bundle(build={self.build[:12]!r})"

    @functools.cached_property
    def data(self) -> bytes:
        """The zip."""
        return _archive(self.entries)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def wire(self) -> bytes:
        """The one line the loader reads after `send`."""
        return base64.b64encode(self.data) + b"\n"

    def zipapp(self) -> bytes:
        """The same archive behind a `#!/usr/bin/env python3` line."""
        return _archive(self.entries, SHEBANG)


def _archive(entries: tuple[tuple[str, bytes], ...], prefix: bytes = b"") -> bytes:
    import zipfile  # here: only an agent sent to another host is zipped (pcontrol start-up, issue 13)

    buffer = io.BytesIO()
    buffer.write(prefix)       # zipfile counts its offsets from the start of the file
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_bundle(package_dir: Path | None = None) -> Bundle:
    """The pclient package as a bundle with its build digest (zipped, deterministically, when
    first asked for)."""
    files = source_files(package_dir or Path(pclient.__file__).resolve().parent)
    build = digest_of(files)
    stamp = (f'"""Written by pcontrol.bootstrap: the build digest of this bundle."""\n'
             f'DIGEST = "{build}"\n').encode()
    entries = tuple([("__main__.py", _ZIP_MAIN)] + [
        (f"pclient/{name}", data) for name, data in files + [(BUNDLED_MODULE, stamp)]])
    return Bundle(build, entries)


@functools.lru_cache(maxsize=1)
def current_bundle() -> Bundle:
    """This pcontrol's own agent (built once per process, a few milliseconds)."""
    return build_bundle()


def write_zipapp(path: str | os.PathLike[str], bundle: Bundle | None = None) -> Bundle:
    """Write the bundle as an executable single-file agent (`python3 FILE ...`)."""
    bundle = bundle or current_bundle()
    replace_file(path, bundle.zipapp(), mode=0o755)
    return bundle


def remote_command(bundle: Bundle, agent_args: list[str],
                   need: tuple[int, int] = MIN_PYTHON) -> str:
    """The command line for the host's login shell that brings the agent up."""
    words = ["python3", "-I", "-c", _packed_loader(), "pclient", ".".join(map(str, need)),
             bundle.sha256, str(len(bundle.data)), *agent_args]
    missing = f'echo "{MARKER.decode()}no-python3 $PATH"; exit 127'
    return (f"command -v python3 >/dev/null 2>&1 || {{ {missing}; }}; exec "
            + shlex.join(words))


@functools.lru_cache(maxsize=1)
def _packed_loader() -> str:
    """REMOTE_LOADER as one short line of Python (no quotes or newlines for the shell)."""
    packed = base64.b64encode(zlib.compress(REMOTE_LOADER.encode(), 9)).decode()
    return f'import base64,zlib;exec(zlib.decompress(base64.b64decode("{packed}")))'


@dataclass
class BootstrapStart:
    """One agent start through the loader: answers its marker lines (agentlink's
    PreHandshake) and remembers how the code got there, for `check host`."""

    bundle: Bundle
    need: tuple[int, int] = MIN_PYTHON
    """The oldest Python the loader was told to accept (for the reasons)."""
    pattern: bytes = rb"(?m)^" + re.escape(MARKER) + rb"([a-z0-9-]+) ?([^\r\n]*)\r?\n"
    events: list[str] = field(default_factory=list)

    @property
    def report(self) -> str:
        """How the code got there: `cached`, `sent`, and why."""
        return "; ".join(self.events) or "no loader output"

    @property
    def used_cache(self) -> bool:
        return any(event.startswith("from the cache") for event in self.events)

    def answer(self, line: bytes) -> PreludeReply:
        match = re.match(self.pattern, line)
        if match is None:         # agentlink matched our own pattern: cannot happen
            return PreludeReply()
        word, rest = match.group(1).decode(), match.group(2).decode("utf-8", "replace")
        need = ".".join(map(str, self.need))
        if word == "no-python3":
            return PreludeReply(failure=f"no python3 on the host's PATH ({rest}); the agent "
                                        f"needs Python {need} or newer")
        if word == "python-too-old":
            version, _, executable = rest.partition(" ")
            return PreludeReply(failure=f"the host's python3 ({executable}) is Python "
                                        f"{version}; the agent needs Python {need} or newer")
        if word == "bad-transfer":
            return PreludeReply(failure="the agent's code arrived damaged (sha256 mismatch)")
        if word == "send":
            self.events.append(f"sent {len(self.bundle.data)} bytes")
            return PreludeReply(send=self.bundle.wire)
        if word == "cache-hit":
            self.events.append(f"from the cache ({rest})")
        elif word == "cache-refused":
            log.warning("the cached agent %s had a wrong sha256; it was deleted and the "
                        "agent sent again", rest)
            self.events.append(f"cache refused: wrong sha256 ({rest})")
        elif word == "cached":
            self.events.append(f"cached as {rest}")
        elif word == "cache-unwritable":
            self.events.append(f"not cached: {rest}")
        else:
            log.info("unknown loader line: %s", line.strip())
        return PreludeReply()
