"""A real one-node Slurm cluster for tests and benches: munged, slurmctld and slurmd started
directly by their binaries (no systemd), in the foreground, with a private slurm.conf, munge
key and socket under one directory, on free ports; stopped by pid.

    cluster = SlurmCluster(Path(tmp)); cluster.start()      # waits until the node is idle
    env = cluster.env            # SLURM_CONF for sbatch, squeue, scancel and pcontrol
    cluster.stop_controller(); cluster.start_controller()    # slurmctld down and back
    cluster.stop_munge(); cluster.start_munge()              # munge broken and mended
    cluster.stop()

`missing()` says why this machine cannot run one (None when it can): Debian's slurmctld,
slurmd, slurm-client and munge are installed by scripts/setup when running as root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from waiting import wait_until_sync

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
#: CPUs the node claims (slurmd's config_overrides lets it claim more than the machine has):
#: short jobs mostly wait on Slurm, not on a CPU.
NODE_CPUS = 16

SLURM_CONF = """\
ClusterName=ptest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.sock
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={dir}/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=300
MessageTimeout=3
KillWait=2
SlurmdParameters=config_overrides
NodeName=node1 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=node1 Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "a private Slurm cluster needs root (slurmd starts jobs as their user)"
    absent = [name for name in PROGRAMS if shutil.which(name) is None
              and not Path("/usr/sbin", name).exists()]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} missing): scripts/setup installs "
                "slurmctld slurmd slurm-client munge when run as root")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    def __init__(self, directory: Path):
        self.dir = directory
        self.conf = directory / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._procs: dict[str, subprocess.Popen] = {}

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        for sub in ("munge", "state", "spool/node1", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(SLURM_CONF.format(
            host=socket.gethostname(), ctld_port=_free_port(), slurmd_port=_free_port(),
            dir=self.dir, cpus=NODE_CPUS))
        self.start_munge()
        self.start_controller()
        self._spawn("slurmd", [_program("slurmd"), "-D", "-N", "node1", "-f", str(self.conf)])
        wait_until_sync(self._node_idle, "the Slurm node is idle", timeout=60)

    def start_munge(self) -> None:
        munge = self.dir / "munge"
        self._spawn("munged", [_program("munged"), "-F", "-f", f"--socket={munge}/munge.sock",
                               f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
                               f"--seed-file={munge}/seed", f"--log-file={munge}/munged.log"])
        wait_until_sync(lambda: (munge / "munge.sock").exists(), "munged made its socket")

    def stop_munge(self) -> None:
        """Munge broken: nothing can prove who it is to Slurm until start_munge()."""
        self._stop("munged")
        wait_until_sync(lambda: not (self.dir / "munge" / "munge.sock").exists(),
                        "munged removed its socket")

    def start_controller(self) -> None:
        self._spawn("slurmctld", [_program("slurmctld"), "-D", "-f", str(self.conf)])
        wait_until_sync(self._controller_answers, "slurmctld answers", timeout=60)

    def stop_controller(self) -> None:
        self._stop("slurmctld")

    def stop(self) -> None:
        """Cancel every job, then stop the daemons by pid (newest first)."""
        if "slurmctld" in self._procs and "slurmd" in self._procs:
            self.run("scancel", "--me")
            try:
                wait_until_sync(lambda: not self.run("squeue", "-h", "--me").stdout.strip(),
                                "the cluster's jobs were cancelled", timeout=20)
            except AssertionError:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            self._stop(name)

    # -- helpers ----------------------------------------------------------------------------

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)

    def squeue(self, *fields: str) -> list[list[str]]:
        """Every job the controller holds, as rows of the given squeue -O fields."""
        out = self.run("squeue", "-h", "-t", "all", "-O",
                       ",".join(f"{f}:|" for f in fields)).stdout
        return [line.rstrip("|").split("|") for line in out.splitlines()]

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.out", "ab")
        self._procs[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _controller_answers(self) -> bool:
        self._check_alive("slurmctld")
        return self.run("squeue", "-h").returncode == 0

    def _node_idle(self) -> bool:
        self._check_alive("slurmd")
        states = self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()
        return states == ["idle"] or states == ["mixed"] or states == ["allocated"]

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            log = (self.dir / "log" / f"{name}.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{log}")
