"""A real one-node SLURM on localhost (munged, slurmctld, slurmd) in a temporary folder.

Used by the SLURM tests (``conftest.py``) and ``benchmarks/engine_backends.py``. Nothing is installed
or written outside ``root``: munged gets its own socket (``AuthInfo=socket=...``), the daemons get
free ports, their own state/spool folders and pid files, and clients find the cluster through
``SLURM_CONF``. Stopped with SIGTERM by pid: slurmd, slurmctld, munged.

As root (CI, ``make test``) munged runs as user ``munge`` with the system key and the daemons as root;
as another user everything runs as that user with a generated key.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import typing as tp
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "sinfo", "scancel")


def missing_binaries() -> list[str]:
    """The SLURM/munge programs not found on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [b for b in BINARIES if shutil.which(b, path=path) is None]


def _which(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} not found: apt-get install slurm-wlm munge (make test does it)")
    return found


def _free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _mem_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


class LocalSlurm:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` points clients at this cluster."""

    def __init__(self, root: Path, max_array_size: int = 1001, cpus: int | None = None) -> None:
        self.root = Path(root)
        self.max_array_size = max_array_size
        self.cpus = cpus or os.cpu_count() or 1
        self.conf = self.root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {"SLURM_CONF": str(self.conf)}

    # ------------------------------------------------------------------ config
    def _write_config(self, munge_socket: Path, user: str) -> None:
        ctld_port, slurmd_port = _free_ports(2)
        for d in ("state", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        lines = [
            "ClusterName=unitwave-test",
            f"SlurmctldHost={self.node}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"MaxArraySize={self.max_array_size}",
            "MinJobAge=600",
            "KillWait=2",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"NodeName={self.node} CPUs={self.cpus} RealMemory={_mem_mb() // 2} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> LocalSlurm:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # munged (another user when root) must reach its folder
        munge_dir = self.root / "munge"
        munge_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            run_as: dict[str, tp.Any] = {"user": "munge", "group": "munge", "extra_groups": []}
            key = Path("/etc/munge/munge.key")
            pw = pwd.getpwnam("munge")
            os.chown(munge_dir, pw.pw_uid, pw.pw_gid)
            user = "root"
        else:
            run_as = {}
            key = munge_dir / "munge.key"
            key.write_bytes(os.urandom(128))
            key.chmod(0o400)
            user = pwd.getpwuid(os.geteuid()).pw_name
        os.chmod(munge_dir, 0o755)
        munge_socket = munge_dir / "munge.socket"
        self._write_config(munge_socket, user)
        self._spawn("munged", [_which("munged"), "-F", f"--socket={munge_socket}", f"--key-file={key}",
                               f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
                               f"--seed-file={munge_dir / 'munged.seed'}"], **run_as)
        self._wait(lambda: munge_socket.exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(self._node_idle, timeout, "the node did not become idle")
        return self

    def _spawn(self, name: str, argv: list[str], **kwargs: tp.Any) -> None:
        with open(self.root / f"{name}.stderr", "wb") as log:
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                env={**os.environ, **self.env}, start_new_session=True, **kwargs)

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                             env={**os.environ, **self.env}, check=False)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _wait(self, ok: tp.Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                self.stop()
                raise RuntimeError(f"{', '.join(dead)} exited early; see {self.root}/*.log and *.stderr")
            if ok():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"local SLURM: {what} within {timeout:.0f} s; see the logs in {self.root}")

    def stop(self) -> None:
        """Cancel every job of this cluster, then SIGTERM slurmd, slurmctld and munged by pid."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--user", pwd.getpwuid(os.geteuid()).pw_name],
                           capture_output=True, env={**os.environ, **self.env}, check=False)
            time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
