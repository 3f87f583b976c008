"""Start-up (issue 13): `sched -c` loads what a run needs, and no more.

Figures are in bench/bench_user.py (4.); this only guards what must not be loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pclient.protocol import Outcome as AgentOutcome
from pcontrol.outcome import Outcome, from_agent
from psched.lang.declared import DeclaredCommand
from psched.lang.registry import BUILTINS
from psched.scheduler import commandtable

BACKEND = ("pcontrol.client", "pcontrol.auth", "pcontrol.wire", "pclient", "pclient.jobproc", "pclient.protocol",
           "psched.scheduler.local", "psched.scheduler.remote", "prompt_toolkit", "importlib.metadata",
           "psched.scheduler.loop", "psched.scheduler.commands", "asyncio", "lark", "regex", "pcontrol.daemon")


HEAVY = ("dataclasses", "inspect", "datetime", "zoneinfo", "calendar", "subprocess", "tempfile", "hashlib", "pickle",
         "pprint", "psched.lang.clocktext", "psched.scheduler.home", "argparse", "shutil", "gettext",
         "psched.shell.options", "logging")
"""What a run that reads no time, runs no program and schedules nothing does without: the
language's records are written out (psched.lang.record), clock's dates, exec's processes and the
parser's hashing are loaded when first used; `sched [FILE...] [-c SCRIPT]` is read without
argparse (psched.shell.options); logging loads at the first message or with the scheduler's
first loop (psched.lang.lazylog)."""


def _runs_clean(code: str) -> str:
    """`python -c CODE` in a fresh interpreter ends with status 0; its output."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _loaded_after(code: str, modules: tuple[str, ...] = BACKEND) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    return _runs_clean(probe).split()


def test_sched_c_loads_no_backend_no_prompt_and_no_package_metadata() -> None:
    assert _loaded_after("from psched.shell.cli import main; assert main(['-c', 'set x 1']) == 0") == []


def test_sched_c_loads_no_dataclasses_dates_processes_or_hashing() -> None:
    code = "from psched.shell.cli import main; assert main(['-c', 'set x [string length abc]; incr x']) == 0"
    assert _loaded_after(code, HEAVY) == []


def test_a_script_s_arguments_are_read_without_argparse(tmp_path: Path) -> None:
    """`sched --args FILE ARG...` (a `#!` line), `sched FILE -- ARG...` and `sched -c SCRIPT -- ARG...`
    are plain command lines."""
    (tmp_path / "probe.sched").write_text("incr argc; lindex $argv 0\n")
    for argv in (["--args", "probe.sched", "a", "-c"], ["probe.sched", "--", "a", "-c"],
                 ["-c", "incr argc", "--", "-v"]):
        code = f"import os; os.chdir({str(tmp_path)!r})\nfrom psched.shell.cli import main; assert main({argv!r}) == 0"
        assert _loaded_after(code, ("argparse", "shutil", "gettext", "psched.shell.options")) == [], argv


def test_clock_and_exec_load_what_they_need_at_their_first_call() -> None:
    code = ("from psched.shell.cli import main\n"
            "assert main(['-c', 'clock seconds; clock format 0 -gmt 1; exec true']) == 0")
    assert set(_loaded_after(code, HEAVY)) >= {"datetime", "zoneinfo", "psched.lang.clocktext", "subprocess"}


def test_the_scheduler_commands_are_declared_as_their_module_declares_them() -> None:
    """psched.scheduler.commandtable is current (else: run scripts/gentables), and its stubs
    give way to the real commands at the first call."""
    assert commandtable.current() == commandtable.DECLARED, "a scheduler command changed: run scripts/gentables"
    assert all(not isinstance(c, DeclaredCommand) for c in BUILTINS.commands.values())


def test_a_stub_loads_the_scheduler_at_its_first_call_and_keeps_its_face() -> None:
    code = ("import sys\n"
            "from psched.shell.cli import main\n"
            "from psched.lang.interp import Interp\n"
            "i = Interp(); u = i.commands['nmax'].usage.text; a = i.commands['wait'].max_args\n"
            "i.eval('set x 1')\n"
            "assert 'psched.scheduler.loop' not in sys.modules\n"
            "try:\n    i.eval('nmax 3')\nexcept Exception as e:\n    print(str(e))\n"  # refused when read
            "assert 'psched.scheduler.loop' in sys.modules\n"
            "i.eval('tasks')\n"  # a stub's first call: the interpreter gets the real commands
            "assert type(i.commands['nmax']).__name__ == 'CommandDef' and i.commands['nmax'].usage.text == u\n"
            "assert i.commands['wait'].max_args == a\n")
    assert "task directive" in _runs_clean(code)


def test_a_task_loads_its_backends() -> None:
    code = "from psched.shell.cli import main; assert main(['-c', 'task t\\n command true\\n host LOCAL\\nend']) == 0"
    assert set(_loaded_after(code)) >= {"psched.scheduler.local", "psched.scheduler.remote", "pcontrol.client"}


def test_a_controller_task_loads_no_local_job_machinery() -> None:
    """pclient.jobproc (spawn, containment, watcher) loads with the first local job: a script of
    controller tasks reaches pcontrol without it (first job of a cold script, issue 13)."""
    code = ("from psched.shell.cli import main\n"
            "assert main(['-c', 'task t\\n command true\\n host NONE\\nend']) == 0")
    loaded = _loaded_after(code, ("psched.scheduler.local", "pclient.jobproc", "pcontrol.syncspec"))
    assert loaded == ["psched.scheduler.local"]  # nor a sync run's words (pcontrol.syncspec)


def test_python_starts_with_no_import_hook_and_the_packages_are_the_worktree_s() -> None:
    """scripts/setup links the package folders into site-packages in place of the editable
    install's finder (~11 ms of every start): nothing of ours runs as Python starts, and the
    code imported is the worktree's own, edits and new modules included."""
    probe = ("import sys, psched, pcontrol, pclient\n"
             "print(' '.join(m for m in sys.modules if m.startswith('__editable__')))\n"
             "print(' '.join(str(m.__path__[0]) for m in (psched, pcontrol, pclient)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    hooks, folders = out.stdout.split("\n")[:2]
    assert hooks == "", "an editable install's import hook runs at every start: run scripts/setup"
    root = Path(__file__).resolve().parents[1]
    assert [Path(f).resolve() for f in folders.split()] == [root / "sched", root / "pcontrol", root / "pclient"]


def test_every_agent_outcome_has_its_own() -> None:
    assert {a: from_agent(a) for a in AgentOutcome} == {
        AgentOutcome.EXIT: Outcome.EXIT, AgentOutcome.CRASH: Outcome.CRASH,
        AgentOutcome.TIMEOUT: Outcome.TIMEOUT, AgentOutcome.KILLED: Outcome.KILLED,
        AgentOutcome.PENDING: Outcome.PENDING}


def test_pcontrol_and_the_agent_start_without_mail_zip_or_pull_probe_code() -> None:
    """pcontrol loads smtplib and email when a mail goes out, zipfile when it zips an agent for
    another host, and the pull hub with a pull listener (--pull-listen); the agent loads the
    pull probe's code only as `pclient --pull`."""
    assert _loaded_after("import pcontrol.cli", ("smtplib", "email.message", "zipfile", "pcontrol.pull",
                                                 "pcontrol.pullserver", "pclient.pullwire")) == []
    assert _loaded_after("import pclient.__main__", ("pclient.probe", "pclient.pullwire")) == []


def test_the_agent_starts_without_logging_s_handlers() -> None:
    """The agent loads pclient.logfile (logging.handlers, with pickle and queue) only for --log
    FILE: a cold script's local agent starts without them (issue 13)."""
    assert _loaded_after("import pclient.__main__", ("pclient.logfile", "logging.handlers", "pickle", "queue")) == []


def test_the_spare_agent_starts_before_the_daemon_loads() -> None:
    """`python -m pcontrol serve --spare-local-agent N` starts that agent first
    (pcontrol.spareagent), so that the agent and the daemon start side by side: nothing of the
    daemon, its asyncio loop or the agent's protocol is loaded before it is under way."""
    assert _loaded_after("import pcontrol.spareagent", ("asyncio", "pexpect", "pclient", "pclient.protocol",
                                                        "pcontrol.daemon", "pcontrol.cli", "dataclasses",
                                                        "subprocess", "logging", "sqlite3")) == []


def test_a_pcontrol_client_command_loads_only_the_client_face() -> None:
    """`pcontrol COMMAND` (scripts and tests call it often) loads no controller, server or command
    table; `pcontrol help` loads the table it answers from."""
    daemon_side = ("pcontrol.controller", "pcontrol.daemon", "pcontrol.verbs", "pcontrol.server", "pcontrol.alerts",
                   "pcontrol.bootstrap")
    status = "from pcontrol.cli import main; main(['--home', '/nonexistent/home', 'status'])"
    assert _loaded_after(status, daemon_side) == []
    helped = ("import contextlib, io\nfrom pcontrol.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n    main(['help'])")
    assert "pcontrol.verbs" in _loaded_after(helped, daemon_side)


def test_sched_begins_a_warm_pcontrol_with_light_modules() -> None:
    """sched reading a script that will need pcontrol begins it warm (pcontrol.warmstart) before
    its own scheduler is loaded: that costs neither asyncio, pclient, logging nor dataclasses."""
    assert _loaded_after("import pcontrol.warmstart", ("asyncio", "pclient", "pclient.protocol", "pcontrol.daemon",
                                                       "pcontrol.cli", "dataclasses", "logging", "pathlib")) == []
    # and what the read-time check needs to decide (its pid file, stopped mark and paths) is as
    # light, so that the warm pcontrol begins before sched loads any of these (issue 13)
    check = ("import psched.shell.cli, psched.scheduler.earlystart\n"
             "from pcontrol import launch, paths, spareagent, warmstart")
    assert _loaded_after(check, ("asyncio", "pclient", "pcontrol.daemon", "pcontrol.cli", "pcontrol.client",
                                 "dataclasses", "inspect", "logging")) == []


def test_the_agent_protocol_makes_its_message_classes_when_first_used() -> None:
    """Each message class of pclient.protocol becomes its dataclass at its first instance or its
    look-up in MESSAGE_TYPES (making all 27 cost more than the rest of the module)."""
    code = ("import dataclasses\n"
            "from pclient import protocol as p\n"
            "made = lambda cls: '__dataclass_fields__' in vars(cls)\n"
            "assert not made(p.Run) and not made(p.Hello)\n"
            "run = p.Run(job='1', argv=('true',))\n"
            "assert made(p.Run) and not made(p.Hello) and run == p.decode(p.encode(run)) and hash(run) == hash(p.Run('1', ('true',)))\n"
            "assert dataclasses.fields(p.MESSAGE_TYPES['hello'])[0].name == 'version'\n"
            "assert all(made(c) for c in p.MESSAGE_TYPES.values())\n"
            "try:\n    run.job = '2'\nexcept dataclasses.FrozenInstanceError:\n    pass\nelse:\n    raise AssertionError('not frozen')\n")
    _runs_clean(code)


LATE_IN_PCONTROL = ("pcontrol.slurmstate", "pcontrol.slurm", "cProfile", "pcontrol.syncspec")
"""What pcontrol loads only when it is used: a Slurm host's code (its first Slurm host), the
profiler ($PCONTROL_PROFILE), a sync run's words (its first run); and sshfail compiles its
messages at the first failed start."""


def test_pcontrol_serves_a_local_host_without_slurm_profiler_or_ssh_failure_code(tmp_path: Path) -> None:
    """A controller serving localhost (a real agent, over its real socket) runs a job to its end
    without them: the first job of a cold script does not wait for them (issue 13)."""
    tests = Path(__file__).resolve().parent
    code = (f"import sys; sys.path[:0] = [{str(tests / 'pcontrol')!r}, {str(tests / 'tools')!r}]\n"
            "import pcontrol.cli\n"
            "from pcontrol import controller, daemon, sshfail\n"
            "from pcontrol_harness import controller_running, run\n"
            "async def main():\n"
            f"    async with controller_running({str(tmp_path)!r}) as h:\n"
            "        await h.add_local('localhost')\n"
            "        await h.wait_job(await h.submit('true'))\n"
            "run(main())\n"
            "print('compiled' if sshfail._compiled.cache_info().currsize else '')")
    loaded = _loaded_after(code, LATE_IN_PCONTROL)
    assert loaded == [], loaded


def test_what_pcontrol_loads_late_still_loads() -> None:
    """Each module pcontrol loads late imports cleanly, and sshfail's messages compile: a broken
    one fails here, not in the middle of a run."""
    code = ("import importlib\n"
            f"for name in {LATE_IN_PCONTROL!r}:\n"
            "    importlib.import_module(name)\n"
            "from pcontrol import sshfail\n"
            "assert sshfail._compiled() and sshfail.classify('ssh: connect to host x: Connection refused')")
    _runs_clean(code)


def test_prepare_makes_messages_ahead_of_their_first_use() -> None:
    """The agent (after its hello) and pcontrol (after ready) make the messages of a handshake
    and first job while they wait (pclient.protocol.prepare): the classes and what decode checks
    of them, which their first use would otherwise make in that exchange's latency."""
    code = ("from pclient import protocol as p\n"
            "assert p.Auth not in p._MADE and p.Run not in p._MADE\n"
            "p.prepare(p.Auth, p.Run)\n"
            "assert {p.Auth, p.Run} <= p._MADE and p.Auth in p._FIELD_SPECS and p.Run in p._FIELD_SPECS\n"
            "assert p.Ping not in p._MADE")
    _runs_clean(code)
