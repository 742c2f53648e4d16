"""The app of ``triage worker``: a thin adapter that moves bytes between Kafka and the core.

faust runs the process — its web port, the tick timer, the services — while both Kafka hops are
plain aiokafka loops (faust's per-message machinery cost more than the core: issue 13).

Topology (README, "The streaming worker")::

    cpr.events ┐
    dar.events ├─ route ─▶ triage.routed ─ decide ─▶ triage.decisions / triage.tasks /
    atp.events ┘  (by municipality)   (journal)         triage.deadletter
                                  ▲
                          tick ───┘ (wall clock as event time, when something waits)

* **route** (:mod:`triage.stream.router`, a plain aiokafka loop run as a service of the app)
  forwards every input record, unchanged, to ``triage.routed`` keyed by the municipality this
  deployment serves. It is stateless, so every worker takes its share of the input partitions.
* **decide** (:mod:`triage.stream.decide_loop`, a plain aiokafka loop too, in the consumer group
  ``<app id>-decide``) feeds each routed record to the partition's :class:`RoutedDecider`
  (:meth:`TriageWorker.step`) and writes what the core returns. A household's events carry
  different keys (each member's CPR number) and land on different input partitions; routing
  gives them one order in one place, which the correlation needs.
* **tick** records the wall clock in the journal while something waits for a window to close —
  only while the router has read every input partition it owns to its end, never during a
  backlog.

Readiness (``/ready``) is true only once the router and the decider have both joined their
groups and every journal partition this worker decides has been rebuilt.

No decision logic lives here. Delivery is at-least-once: an output is produced before the
offset of the routed record that caused it is committed, so a crash can repeat outputs but
never lose one; consumers deduplicate decisions on ``event_id`` and tasks on ``task_id`` (both
deterministic, so a repeat is byte-for-byte the same decision or task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.casesystem.client import CaseSystemClient, LookupUnavailable
from triage.cases import CaseIndex
from triage.control import KINDS as CONTROL_KINDS
from triage.core import Outputs, Triage
from triage.decisionlog.service import attach as attach_decision_log
from triage.gcpolicy import paused, settle_long_lived
from triage.models.events import Event, InvalidEvent, parse_event
from triage.models.reference import CaseRecord
from triage.register import Register
from triage.rules import load_ruleset
from triage.snapshot import load_reference, read_persons
from triage.stream.checkpoint import (
    CheckpointRefused,
    CheckpointStore,
    file_digest,
    record_digest,
)
from triage.stream.decide_loop import DecideLoop, Outgoing
from triage.stream.decider import RoutedDecider
from triage.stream.delivery import TaskDelivery
from triage.stream.health import ClusterWatch, WorkerHealth
from triage.stream.kafka_security import faust_broker_credentials, kafka_client_kwargs
from triage.stream.metrics import WorkerMetrics
from triage.stream.operator import install as install_operator
from triage.stream.operator import sighup_reload
from triage.stream.router import Router
from triage.stream.settings import KIND_HEADER, ROUTED_TOPIC, TICK, WorkerSettings
from triage.stream.shadow import ShadowAgreement
from triage.task_ids import task_key_from_env, warn_if_development_key
from triage.web import install as install_web
from triage.web_limits import HttpLimits, faust_web_options, harden_faust_web

WEB_LIMITS = HttpLimits()
"""The worker's web port (health, readiness, metrics): see :mod:`triage.web_limits`."""

log = logging.getLogger(__name__)

RAW: dict[str, Any] = dict(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


class TriageWorker:
    """The worker's app, its deciders per routed partition, and its metrics."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.metrics = WorkerMetrics()
        self.ruleset = load_ruleset(settings.rules)
        self.task_key = task_key_from_env(warn=False)  # a bad key stops the start; warned below
        self.client: CaseSystemClient | None = None
        if settings.casesystem_url:
            self.client = settings.casesystem_client()
        self._fresh: CaseIndex | None = self._load_reference()  # fail fast on bad reference
        self.deciders: dict[int, RoutedDecider] = {}
        self.decider_ready = False
        """The decide loop has its assignment and every assigned journal partition is
        rebuilt."""
        self._prepare_lock = asyncio.Lock()
        self.health = WorkerHealth()
        self.kafka = kafka_client_kwargs(settings)
        """TLS / SASL keyword arguments for every aiokafka client (triage.stream.kafka_security)."""
        self.checkpoints = self._checkpoint_store()
        self._checkpointed: dict[int, int] = {}
        self._fetch_wait_ms = int(settings.fetch_wait.total_seconds() * 1000)
        if settings.shadow_rules is not None:
            load_ruleset(settings.shadow_rules)  # a bad shadow file stops the start
        settings.operator_secret()  # an unreadable token file stops the start
        self._reconciled = False
        self.app = self._build_app()

    # --- the app ----------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        session = s.session_timeout.total_seconds()
        app = faust.App(
            s.app_id,
            broker=f"kafka://{s.bootstrap}",
            broker_credentials=faust_broker_credentials(s),
            store="memory://",
            processing_guarantee="at_least_once",
            datadir=str(s.data_dir),
            web_enabled=True,
            web_port=s.web_port,
            web_bind=s.web_host,
            web_in_thread=False,
            topic_partitions=s.input_partitions,
            topic_replication_factor=1,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=session,
            broker_rebalance_timeout=session,
            broker_heartbeat_interval=min(0.5, session / 6),
            broker_commit_interval=1.0,
            producer_linger=0.001,
            table_standby_replicas=0,
            # room for the largest output: a dead letter keeps at most the message limit
            producer_max_request_size=max(1_000_000, 2 * s.max_message_bytes),
            **faust_web_options(WEB_LIMITS),
        )
        harden_faust_web(app, WEB_LIMITS)  # timeouts, connection limit (triage/web_limits.py)
        self.router = Router(s, loop=app.loop, beacon=app.beacon)
        app.service(self.router)  # type: ignore[arg-type]  # an instance is accepted too
        self.health.fetched_at = lambda: self.router.fetched_at
        self.health.journal_lag = self._journal_lag
        app.service(ClusterWatch(s.bootstrap, self.health,  # type: ignore[arg-type]
                                 client_kwargs=self.kafka, loop=app.loop, beacon=app.beacon))
        if self.client is not None:
            app.service(TaskDelivery(s, self.client, self.metrics,  # type: ignore[arg-type]
                                     loop=app.loop, beacon=app.beacon))
        routed = app.topic(ROUTED_TOPIC, partitions=1, **RAW)
        self._routed, self._audit = routed, app.topic("triage.audit", **RAW)
        route_key = self._route_key = s.municipality.encode()
        self._agreement = ShadowAgreement(self.metrics)
        self.decide_loop = DecideLoop(s, self.step, on_assigned=self._assigned,
                                      on_revoked=self._revoked, client_kwargs=self.kafka,
                                      fatal=self.health.stop_loudly, legacy_group=s.app_id,
                                      loop=app.loop,
                                      beacon=app.beacon)
        app.service(self.decide_loop)  # type: ignore[arg-type]

        @app.task
        async def warn_about_the_task_key() -> None:
            warn_if_development_key(self.task_key)  # once faust's logging is set up
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                app.loop.add_signal_handler(signal.SIGHUP, sighup_reload, self.operator)

        @app.timer(interval=s.tick.total_seconds())
        async def tick() -> None:
            if not self.router.caught_up:
                return  # a backlog is still unread: the wall clock must not close its windows
            for partition, decider in list(self.deciders.items()):
                value = decider.tick_value()
                if value is not None:
                    await routed.send(
                        key=route_key, value=value, partition=partition, headers={KIND_HEADER: TICK}
                    )

        @app.page("/health")
        async def health(web: Any, request: Any) -> Any:
            problems = self.health.problems()
            if problems:
                return web.json({"status": "unhealthy", "problems": problems}, status=503)
            return web.json({"status": "ok"})

        @app.page("/ready")
        async def ready(web: Any, request: Any) -> Any:
            assigned = sorted([f"{tp.topic}:{tp.partition}" for tp in self.decide_loop.assignment()]
                              + self.router.assignment())
            problems = self.health.problems()
            body = {"ready": self.ready and not problems, "problems": problems,
                    "router_joined": self.router.joined,
                    "decider_ready": self.decider_ready, "caught_up": self.router.caught_up,
                    "assigned": assigned, "journal_partitions": sorted(self.deciders),
                    "applied": sum(d.next_offset for d in self.deciders.values()),
                    "committed": sum(self._committed(p) or 0 for p in self.deciders),
                    "ruleset": self._active_version()}
            return web.json(body, status=200 if body["ready"] else 503)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            self._update_gauges()
            return web.bytes(
                generate_latest(self.metrics.registry),
                content_type=CONTENT_TYPE_LATEST.split(";")[0],
            )

        # the decision log (its own consumer group) and the page: triage/decisionlog, triage/web
        self.decision_log = attach_decision_log(app, self)
        install_web(app, self)
        self.operator = install_operator(app, self)

        return app

    async def step(self, partition: int, offset: int, value: bytes, headers: Any,
                   timestamp: int) -> list[Outgoing]:
        """One journal record through the decider: the output records it causes (the decide
        loop, :mod:`triage.stream.decide_loop`, produces them and commits)."""
        kind = header(headers, KIND_HEADER)
        out = await self._apply(partition, offset, value, kind)
        self.health.applied()
        self._maybe_checkpoint(partition, value, kind)
        if out is None:
            return []
        if kind is not None and kind.decode(errors="replace") in CONTROL_KINDS:
            self._show_rulesets()
        records = []
        agreement, shadowing = self._agreement, self._shadowing
        for decision in out.decisions:
            records.append(Outgoing("triage.decisions", (decision.event_id or "").encode(),
                                    decision.to_json()))
            if shadowing:
                agreement.active(decision)
        for judged in out.shadow:  # a shadow ruleset's: never a task
            records.append(Outgoing("triage.shadow", (judged.decision.event_id or "").encode(),
                                    judged.decision.to_json()))
            agreement.shadow(judged.decision)
        for task in out.tasks:
            records.append(Outgoing("triage.tasks", task.case_id.encode(), task.to_json()))
        for bad in out.deadletters:
            records.append(Outgoing("triage.deadletter", (bad.event_id or "").encode(), bad.raw,
                                    [("triage-error", bad.error.encode())]))
        self.metrics.count(out, arrived=timestamp)
        return records

    def _assigned(self, partitions: set[int]) -> None:
        self.app.loop.create_task(self._prepare())

    def _revoked(self, partitions: set[int]) -> None:
        self.decider_ready = False

    @property
    def ready(self) -> bool:
        """Both consumers joined, every assigned journal partition rebuilt."""
        return self.router.joined and self.decider_ready

    async def _prepare(self) -> None:
        """After a rebalance: rebuild every journal partition now assigned (up to what the
        group committed), before saying ready; forget the ones that went elsewhere."""
        assigned = {tp.partition for tp in self.decide_loop.assignment()}
        for partition in set(self.deciders) - assigned:
            del self.deciders[partition]
        for partition in sorted(assigned):
            await self._decider_for(partition, None)
        self.decider_ready = True
        self._show_rulesets()
        if self.deciders and not self._reconciled:
            self._reconciled = True
            await self._reconcile_rules()

    # --- operator changes (triage/stream/operator.py) ----------------------------------------

    async def journal(self, record: tuple[list[tuple[str, bytes]], bytes]) -> None:
        """Write a control record into every journal partition this worker decides."""
        headers, value = record
        for partition in sorted(self.deciders):
            await self._routed.send(key=self._route_key, value=value, partition=partition,
                                    headers=dict(headers))

    async def audit(self, value: bytes, key: bytes) -> None:
        await self._audit.send(key=key, value=value)

    def _active_version(self) -> str:
        decider = next(iter(self.deciders.values()), None)
        return decider.core.ruleset.version if decider is not None else self.ruleset.version

    @property
    def _shadowing(self) -> bool:
        decider = next(iter(self.deciders.values()), None)
        return decider is not None and decider.core.shadow is not None

    def _show_rulesets(self) -> None:
        """The active and shadow ruleset versions in force, as ``triage_ruleset_info``."""
        decider = next(iter(self.deciders.values()), None)
        if decider is None:
            return
        core = self.metrics
        for role, ruleset in (("active", decider.core.ruleset), ("shadow", decider.core.shadow)):
            if ruleset is not None:
                core.allow_rules(rule.id for rule in ruleset.rules)
            if core.ruleset(role) != (ruleset.version if ruleset is not None else None):
                core.set_ruleset(ruleset.version if ruleset is not None else None, role)

    async def _reconcile_rules(self) -> None:
        """Once, after the first rebuild: the journal's ruleset stays active (a differing
        ``TRIAGE_RULES`` is only reported: reload applies it); ``TRIAGE_SHADOW_RULES`` is
        journalled when it differs from the shadow in force."""
        active = self._active_version()
        if active != self.ruleset.version:
            log.warning("TRIAGE_RULES %s is version %s, but the journal made %s active (a "
                        "promotion): %s stays active; reload (SIGHUP or POST "
                        "/api/rules/reload) to make the file active", self.settings.rules,
                        self.ruleset.version, active, active)
        try:
            await self.operator.journal_shadow(self.settings.shadow_rules)
        except Exception as exc:
            log.error("TRIAGE_SHADOW_RULES not applied: %s", exc)

    # --- deciding ---------------------------------------------------------------------------

    def _checkpoint_store(self) -> CheckpointStore | None:
        s = self.settings
        if s.checkpoint_interval <= 0:
            return None
        reference = file_digest(s.persons, s.cases) if s.cases is not None else \
            f"{file_digest(s.persons)} cases from {s.casesystem_url}"
        compat = {"ruleset": self.ruleset.version, "window": s.window.total_seconds(),
                  "lateness": s.lateness.total_seconds(),
                  "max_clock_jump": s.max_clock_jump.total_seconds(),
                  "municipality": s.municipality, "reference": reference}
        key = s.checkpoint_key.get_secret_value().encode() if s.checkpoint_key else None
        return CheckpointStore(s.checkpoint_dir or s.data_dir / "checkpoints", compat, key=key)

    def _new_decider(self) -> RoutedDecider:
        cases, self._fresh = self._fresh or self._load_reference(), None
        s = self.settings
        return RoutedDecider(Triage(cases, self.ruleset, window=s.window, task_key=self.task_key),
                             lateness=s.lateness, max_jump=s.max_clock_jump)

    async def _decider_for(self, partition: int, offset: int | None) -> RoutedDecider:
        """The partition's decider; rebuilt first when this worker has none, or when the
        group committed beyond what it applied (another worker decided meanwhile). Only what
        the group had *committed* is rebuilt silently (``offset``: the record about to be
        applied, if any)."""
        async with self._prepare_lock:
            committed = self._committed(partition)
            decider = self.deciders.get(partition)
            if decider is not None and (committed is None or decider.next_offset >= committed):
                return decider
            upto = committed if committed is not None else (offset or 0)
            if offset is not None:
                upto = min(upto, offset)
            return await self._rebuild(partition, upto)

    async def _apply(self, partition: int, offset: int, value: bytes,
                     kind: bytes | None) -> Outputs | None:
        """Apply one journal record, catching up first when records before it were never
        applied here. Only what the group had *committed* is rebuilt silently; anything after
        that is decided with its outputs written (at worst a repeat, never a loss)."""
        decider = self.deciders.get(partition)
        if decider is None:
            decider = await self._decider_for(partition, offset)
        if offset < decider.next_offset:
            self._check_journal(partition, decider)
        out = Outputs()
        if offset > decider.next_offset:
            for record in await read_journal(self.settings.bootstrap, self.kafka, partition, offset,
                                             self._fetch_wait_ms, start=decider.next_offset):
                caught_up = decider.apply(*record)
                if caught_up is not None:
                    out.extend(caught_up)
        parsed: Event | None = None
        unavailable: str | None = None
        if self.client is not None and not kind and offset == decider.next_offset:
            candidate = parse_event(value)
            if not isinstance(candidate, InvalidEvent):
                parsed = candidate
                unavailable = await self._refresh_cases(decider, parsed)
        applied = decider.apply(offset, value, kind, event=parsed, unavailable=unavailable)
        if applied is None:
            self.metrics.skipped.inc()
        else:
            out.extend(applied)
        return out

    async def _refresh_cases(self, decider: RoutedDecider, event: Event) -> str | None:
        """Fresh case data for the event's persons from the case system, into the core's case
        index; the reason when the case system could not be asked."""
        assert self.client is not None
        try:
            for cpr in event.persons:
                for record in await self.client.cases_for(cpr):
                    decider.core.cases.upsert(record)
        except LookupUnavailable as exc:
            self.metrics.lookup_failures.inc()
            return str(exc)
        return None

    def _load_reference(self) -> CaseIndex:
        """The register from the persons file; cases from the cases file or, when the case
        system is configured, from the case system (all active cases)."""
        s = self.settings
        if s.cases is not None:
            return load_reference(s.persons, s.cases)
        with paused():
            register = Register.of_people(read_persons(s.persons))

        async def all_cases() -> list[CaseRecord]:
            assert s.casesystem_url is not None
            async with s.casesystem_client() as client:
                return await client.all_cases()

        return CaseIndex(register, asyncio.run(all_cases()))

    async def _from_checkpoint(self, partition: int, upto: int) -> RoutedDecider | None:
        if self.checkpoints is None:
            return None
        for found in self.checkpoints.found(partition, upto):
            try:
                decider, digest = self.checkpoints.load(found)
                before = await read_journal(self.settings.bootstrap, self.kafka, partition,
                                            found.offset,
                                            self._fetch_wait_ms, start=found.offset - 1)
                if not before or record_digest(before[0][1], before[0][2]) != digest:
                    raise CheckpointRefused("journal", f"{found.path.name}: the journal holds "
                                            "another record at its offset")
                if not isinstance(decider, RoutedDecider) or decider.next_offset != found.offset:
                    raise CheckpointRefused("damaged", f"{found.path.name}: not a decider state")
            except CheckpointRefused as refused:
                log.warning("checkpoint not used, trying an older one: %s", refused)
                self.metrics.checkpoint_fallbacks.labels(refused.reason).inc()
                continue
            decider.resume()
            log.info("journal partition %d: resumed from checkpoint at offset %d", partition,
                     found.offset)
            return decider
        return None

    def _maybe_checkpoint(self, partition: int, value: bytes, kind: bytes | None) -> None:
        """Every ``checkpoint_interval`` records: write the decider's state (the record just
        applied is the last it saw)."""
        decider = self.deciders.get(partition)
        if self.checkpoints is None or decider is None:
            return
        if decider.next_offset - self._checkpointed.get(partition, 0) < \
                self.settings.checkpoint_interval:
            return
        started = time.monotonic()
        self.checkpoints.write(partition, decider.next_offset, decider,
                               record_digest(value, kind))
        self._checkpointed[partition] = decider.next_offset
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(time.monotonic() - started)

    def _journal_highwater(self, partition: int) -> int | None:
        return self.decide_loop.highwater(partition)

    def _journal_lag(self) -> int:
        lag = 0
        for partition, decider in list(self.deciders.items()):
            highwater = self._journal_highwater(partition)
            if highwater is not None:
                lag += max(0, highwater - decider.next_offset)
        return lag

    def _check_journal(self, partition: int, decider: RoutedDecider) -> None:
        """A record below the decider's position is a redelivery — unless the journal ends
        below that position: then it was reset (a new, empty cluster), and the worker stops
        loudly rather than skip what the new journal holds."""
        highwater = self._journal_highwater(partition)
        if highwater is not None and highwater < decider.next_offset:
            self.health.stop_loudly(
                f"journal {ROUTED_TOPIC}[{partition}] ends at offset {highwater}, below the "
                f"{decider.next_offset} records this worker applied: it was reset; start the "
                "worker again to rebuild from the journal as it is now")

    def _committed(self, partition: int) -> int | None:
        """The journal offset the decide group last committed for ``partition``, if any (read
        from the broker when the partition was assigned)."""
        return self.decide_loop.committed.get(partition)

    async def _rebuild(self, partition: int, upto: int) -> RoutedDecider:
        """A core brought to journal offset ``upto`` — the state the previous owner had when
        it committed ``upto`` — from the newest usable checkpoint at or below it plus the
        journal records after it, replayed silently; from the journal's start when there is
        none (or none can be used: each refusal is logged and counted)."""
        started = time.monotonic()
        decider = await self._from_checkpoint(partition, upto) if upto > 0 else None
        if decider is None:
            decider = self._new_decider()
        start = decider.next_offset
        if upto > start:
            decider.rebuild(await read_journal(self.settings.bootstrap, self.kafka, partition, upto,
                                               self._fetch_wait_ms, start=start))
        if decider.next_offset != upto:
            raise RuntimeError(f"journal partition {partition}: rebuilt to "
                               f"{decider.next_offset}, expected {upto}")
        self.metrics.rebuild_records.set(upto - start)
        self._checkpointed[partition] = start
        self.deciders[partition] = decider
        settle_long_lived()  # the register and cases live as long as the worker: keep them out
        # of every collection, whose pauses would otherwise show in the p99 latency
        self.metrics.rebuilds.inc()
        self.metrics.rebuild_seconds.observe(time.monotonic() - started)
        return decider

    def _update_gauges(self) -> None:
        self.metrics.waiting.set(sum(d.pipeline.waiting for d in self.deciders.values()))
        self.metrics.open_moves.set(sum(len(d.core.households) for d in self.deciders.values()))


async def read_journal(bootstrap: str, client_kwargs: dict[str, Any], partition: int, upto: int,
                       fetch_wait_ms: int,
                       start: int = 0) -> list[tuple[int, bytes, bytes | None]]:
    """Records ``[start, upto)`` of a ``triage.routed`` partition, in offset order."""
    records: list[tuple[int, bytes, bytes | None]] = []
    if upto <= start:
        return records
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms,
                                auto_offset_reset="earliest", **client_kwargs)
    await consumer.start()
    try:
        tp = TopicPartition(ROUTED_TOPIC, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + 300
        while not records or records[-1][0] < upto - 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"journal partition {partition}: could not read up to {upto}")
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            for message in batch.get(tp, []):
                if message.offset >= upto:
                    break
                records.append((message.offset, message.value,
                                header(message.headers, KIND_HEADER)))
        return records
    finally:
        await consumer.stop()


def header(headers: Any, name: str) -> bytes | None:
    """A header's value from faust (mapping) or aiokafka (sequence of pairs) headers."""
    if not headers:
        return None
    if isinstance(headers, dict):
        return headers.get(name)
    return next((value for key, value in headers if key == name), None)
