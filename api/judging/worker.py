"""The worker: claim pairs with leases, judge them in both orders, route, store.

One asyncio loop keeps up to ``worker_pairs_in_flight`` pairs in flight and at most
``judge_concurrency`` judge calls open. Database work (claim, cache lookup, writes) runs in
threads in batches so the event loop keeps calling judges meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.calibrate.refits import decided_under
from api.calibrate.versions import GateCache, latest_version, version_name
from api.judging.checks import allowed_api_bases
from api.judging.claims import (
    cached_judgments,
    claim_pairs,
    labelled_pairs,
    own_judgments,
    renew_lease,
    renew_leases,
)
from api.judging.finished import Finished
from api.judging.injection_recheck import Recheck, moved_reasons
from api.judging.screens import Screened, Texts, prechecks, screen_pairs, shared_pool
from api.judging.stages import orders_for, pair_stages
from api.metrics import (
    INJECTION_RECHECKS,
    JUDGE_CACHE_HITS,
    JUDGE_CALLS,
    JUDGE_CALLS_SAVED,
    JUDGE_COST,
    JUDGE_ERRORS,
    JUDGE_LATENCY,
    JUDGE_RETRIES,
    PAIRS_ROUTED,
)
from api.models import Judgment, Pair, Project
from api.routing.decisions import PairOutcome, decision_fields, store_outcomes
from api.routing.route import JudgmentView, route_pair
from api.schemas import AspectSettings, JudgeSpec, RoutingSettings, panel_calls
from api.settings import Settings
from judge.aspects import AspectQuestion, verdict_schema
from judge.client import JudgeCallResult, RetryPolicy, call_judge, judge_key
from judge.litellm_loader import load_litellm
from judge.options import CallOptions
from judge.providers import REPLAY_PROVIDER
from judge.verdicts import side

log = logging.getLogger("prelabel.worker")

FLUSH_EVERY_S = 0.2
FLUSH_SIZE = 128
# What a judge call (or a cache hit, which has the same attributes) stores per judgment.
JUDGMENT_FIELDS = (
    "judge", "order", "verdict", "both_bad", "safety_flag", "confidence", "raw",
    "latency_ms", "prompt_tokens", "completion_tokens", "cost", "attempts", "error", "aspects",
)  # fmt: skip
# What routing reads of a judgment row, in JudgmentView's order.
VIEW_FIELDS = ("judge", "order", "verdict", "both_bad", "safety_flag", "confidence", "error", "aspects")


@dataclasses.dataclass(frozen=True)
class _Tuned:
    """What one judge of a project calls with (JudgeSpec's per-judge options)."""

    options: CallOptions
    policy: RetryPolicy
    limit: asyncio.Semaphore | None  # max_concurrency; None: only the worker's judge_concurrency
    # The project's aspects asked in every call, and the weights of a combined overall
    # (None: the overall is its own question). No aspects: the calls of before.
    aspects: tuple[AspectQuestion, ...] = ()
    weights: dict[str, float] | None = None


class Worker:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.gates = GateCache(engine)
        self.policy = RetryPolicy(
            max_attempts=settings.judge_max_attempts,
            initial_s=settings.judge_retry_initial_s,
            max_s=settings.judge_retry_max_s,
            timeout_s=settings.judge_timeout_s,
        )
        # Where judge calls may go with a provider key (judge/endpoints.py), checked per call.
        self._allowed_api_bases = allowed_api_bases(settings)
        self._projects: dict[int, Project] = {}
        # The calibration version each project was read under: a panel or routing edit
        # (api/calibrate/project_settings.py) stores a new version, and the project is read again.
        self._read_under: dict[int, str] = {}
        # Parsed once per project and calibration version.
        self._routing: dict[int, RoutingSettings] = {}
        self._boosted_routing: dict[int, RoutingSettings] = {}  # the same, audits at the boosted rate
        self._specs: dict[int, dict[str, JudgeSpec]] = {}
        self._judge_keys: dict[int, dict[str, str]] = {}  # per project: model -> judge_key
        self._tuned: dict[int, dict[str, _Tuned]] = {}  # per project: model -> its own call settings
        self._aspects: dict[int, AspectSettings] = {}
        # Adaptive audits: per (project, version) the pairs this worker has routed under it,
        # and the versions whose first audit_boost_pairs pairs are all decided.
        self._routed_under: dict[tuple[int, str], int] = {}
        self._boost_over: set[tuple[int, str]] = set()
        # Pairs claimed and not yet handed to a store: the ones the heartbeat renews.
        self._held: set[int] = set()
        self.pairs_done = 0

    def _project(self, project_id: int) -> Project:
        _, version = self.gates.get(project_id)
        if project_id not in self._projects or self._read_under.get(project_id) != version:
            # Settings are stored before the version that follows an edit: read under this
            # version, the project holds at least the settings the version was made with.
            self._read_under[project_id] = version
            with Session(self.engine, expire_on_commit=False) as session:
                project = session.get(Project, project_id)
                if project is None:
                    raise LookupError(f"project {project_id} vanished")
                self._projects[project_id] = project
                self._routing[project_id] = project.routing_settings()
                routing = self._routing[project_id]
                self._boosted_routing[project_id] = routing.model_copy(
                    update={"audit_rate": max(routing.audit_rate, routing.audit_boost_rate)}
                )
                self._specs[project_id] = {spec.model: spec for spec in project.judge_specs()}
                aspects = self._aspects[project_id] = project.aspect_settings()
                self._tuned[project_id] = {
                    m: self._tune(s, aspects) for m, s in self._specs[project_id].items()
                }
                self._judge_keys[project_id] = {
                    spec.model: judge_key(
                        spec.model,
                        api_base=spec.api_base,
                        logprobs=spec.logprobs,
                        rubric=project.rubric,
                        prompt_version=project.prompt_version,
                        options=self._tuned[project_id][spec.model].options,
                        aspects=self._tuned[project_id][spec.model].aspects,
                        weights=self._tuned[project_id][spec.model].weights,
                    )
                    for spec in self._specs[project_id].values()
                }
        return self._projects[project_id]

    def _tune(self, spec: JudgeSpec, aspects: AspectSettings) -> _Tuned:
        """A judge's own options, its timeout in the retry policy, its own limit on open
        calls (a semaphore per judge of a project, inside the worker's global one), and the
        project's aspects (a "json_schema" judge is held to the verdict object with them)."""
        policy = self.policy
        if spec.timeout_s is not None:
            policy = dataclasses.replace(policy, timeout_s=spec.timeout_s)
        limit = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
        questions, weights = aspects.questions(), aspects.combine_weights()
        options = spec.call_options()
        if questions:
            options = dataclasses.replace(options, schema=verdict_schema(questions, weights is None))
        return _Tuned(options, policy, limit, questions, weights)

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> int:
        """Judge until ``stop`` is set (or, with ``until_idle``, until nothing is left to claim),
        renewing the leases of the pairs in hand meanwhile. Returns the pairs judged."""
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            return await self._judge(stop, until_idle)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self) -> None:
        """Renew this worker's leases every third of a lease, so leases can be short: a worker
        that dies (SIGKILL, OOM, a lost host) stops renewing and its pairs are claimed again
        within one lease, while a slow pair (retries, a hung provider) stays with its live
        worker. It runs on the judging loop, so a loop stalled for a whole lease lets go too."""
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            held = set(self._held)
            if not held:
                continue
            try:
                renewed = await asyncio.to_thread(
                    renew_leases, self.engine, self.worker_id, held, self.settings.lease_seconds
                )
            except Exception:  # a database hiccup: the next beat tries again, the lease has slack
                log.exception("lease renewal failed")
                continue
            # Pairs handed to a store meanwhile left self._held: those were not lost.
            lost = (held - renewed) & self._held
            if lost:
                # Another worker holds them now; store_outcomes will skip this worker's results.
                log.warning("%d leases lost (expired and claimed elsewhere)", len(lost))
                self._held -= lost

    async def _judge(self, stop: asyncio.Event | None, until_idle: bool) -> int:
        """The loop behind :meth:`run`. Claiming and storing run as background tasks beside the
        judge calls, so the database round trips overlap with judging instead of pausing it."""
        semaphore = asyncio.Semaphore(self.settings.judge_concurrency)
        capacity = max(1, self.settings.worker_pairs_in_flight)
        inflight: set[asyncio.Task[PairOutcome]] = set()
        finished: Finished[PairOutcome] = Finished()
        claiming: asyncio.Task[list[asyncio.Task[PairOutcome]]] | None = None
        storing: asyncio.Task[int] | None = None
        storing_size = 0
        outcomes: list[PairOutcome] = []
        last_flush = next_claim_at = time.monotonic()
        queue_empty = False
        # Bumped whenever a store sends pairs back to the queue. An empty claim that began
        # before such a store may have read the queue before they returned, so it does not
        # prove the queue empty.
        requeues = claim_saw_requeues = 0
        while True:
            stopping = stop is not None and stop.is_set()
            now = time.monotonic()
            free = capacity - len(inflight)
            # Claim in batches (a quarter of capacity at least) to keep the database calm.
            if not stopping and claiming is None and free >= max(1, capacity // 4) and now >= next_claim_at:
                claiming = asyncio.create_task(self._claim(free, semaphore))
                claim_saw_requeues = requeues
            flush_due = len(outcomes) >= FLUSH_SIZE or now - last_flush >= FLUSH_EVERY_S or not inflight
            if storing is None and outcomes and flush_due:
                self._held.difference_update(o.pair_id for o in outcomes)  # the store takes over
                storing = asyncio.create_task(
                    asyncio.to_thread(store_outcomes, self.engine, self.worker_id, outcomes)
                )
                storing_size, outcomes, last_flush = len(outcomes), [], now
            waiting: set[asyncio.Task] = {t for t in (claiming, storing) if t is not None}
            if inflight:
                waiting.add(finished.waiter())
            if not waiting:
                if stopping or (until_idle and queue_empty):
                    finished.close()
                    break
                await self._sleep(stop)
                continue
            done, _ = await asyncio.wait(waiting, timeout=FLUSH_EVERY_S, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is claiming:
                    started = task.result()
                    inflight.update(started)
                    finished.watch(started)
                    queue_empty = not started and claim_saw_requeues == requeues
                    if queue_empty:  # nothing to do: look again after the poll interval
                        next_claim_at = time.monotonic() + self.settings.poll_interval_s
                    claiming = None
                elif task is storing:
                    stored = task.result()
                    self.pairs_done += stored
                    storing = None
                    if stored < storing_size:  # some went back to the queue (a newer gate): claim again
                        requeues += 1
                        queue_empty, next_claim_at = False, time.monotonic()
            for task in finished.take():
                inflight.discard(task)
                outcomes.append(task.result())
        return self.pairs_done

    async def _sleep(self, stop: asyncio.Event | None) -> None:
        if stop is None:
            await asyncio.sleep(self.settings.poll_interval_s)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_interval_s)
        except TimeoutError:
            pass

    async def _claim(self, limit: int, semaphore: asyncio.Semaphore) -> list[asyncio.Task[PairOutcome]]:
        pairs = await asyncio.to_thread(
            claim_pairs, self.engine, self.worker_id, limit, self.settings.lease_seconds
        )
        # One of our own pairs whose lease ran out (renewals failed) is already being judged here.
        pairs = [p for p in pairs if p.id not in self._held]
        self._held.update(p.id for p in pairs)
        return await self._start(pairs, semaphore) if pairs else []

    async def _start(
        self, pairs: list[Pair], semaphore: asyncio.Semaphore
    ) -> list[asyncio.Task[PairOutcome]]:
        projects = {p.project_id: self._project(p.project_id) for p in pairs}
        texts = [(p.prompt, p.response_a, p.response_b) for p in pairs]
        processes = self.settings.screen_processes
        screened: list[Screened] | None
        if processes:  # the screens in their own processes, meanwhile the database work here
            (cache, _, labelled, boosted), screened = await asyncio.gather(
                asyncio.to_thread(self._prepare, pairs, projects, None),
                shared_pool(processes).screen(texts),
            )
        else:
            prepared = await asyncio.to_thread(self._prepare, pairs, projects, texts)
            cache, screened, labelled, boosted = prepared
        assert screened is not None  # screened here or in the pool
        flags, rechecks = prechecks(pairs, screened)
        return [
            asyncio.create_task(
                self._judge_pair(
                    pair,
                    projects[pair.project_id],
                    cache,
                    flag,
                    pair.id in labelled,
                    pair.id in boosted,
                    semaphore,
                    recheck,
                )
            )
            for pair, flag, recheck in zip(pairs, flags, rechecks, strict=True)
        ]

    def _prepare(
        self, pairs: list[Pair], projects: dict[int, Project], texts: list[Texts] | None
    ) -> tuple[dict[tuple[str, str, str], Judgment], list[Screened] | None, set[int], set[int]]:
        """A claimed batch's database reads (in a thread): the cached verdicts, the labelled
        pairs of cascade projects, the boosted audits; and the screens of ``texts`` when they
        are not screened in processes of their own (None then)."""
        # litellm's first import takes seconds of CPU: pay it here, in a thread, and not in
        # the first judge call on the event loop, where it would stall the lease heartbeat.
        if any(not m.startswith(f"{REPLAY_PROVIDER}/") for p in projects for m in self._specs[p]):
            load_litellm()
        cache: dict[tuple[str, str, str], Judgment] = {}
        keys = [(p.content_hash, key) for p in pairs for key in self._judge_keys[p.project_id].values()]
        cache.update(cached_judgments(self.engine, keys))
        screened = screen_pairs(texts) if texts is not None else None
        # A pair judged before (sent back for a cascade stage or a backfill) keeps the
        # verdicts it has: they are read, not asked again nor stored twice.
        again = [p for p in pairs if p.judged_at is not None]
        if again:
            for row in own_judgments(self.engine, [p.id for p in again]):
                cache[(f"own:{row.pair_id}", row.judge, row.order)] = row
            # They came back because the gate changed: route them under the latest version.
            for project_id in {p.project_id for p in again}:
                self.gates.get(project_id, fresh=True)
        # Cascade projects judge labelled pairs with the whole panel (the fit needs it).
        cascading = [p.id for p in pairs if self._routing[p.project_id].cascade]
        labelled = labelled_pairs(self.engine, cascading) if cascading else set()
        return cache, screened, labelled, self._boosted_audits(pairs)

    def _boosted_audits(self, pairs: list[Pair]) -> set[int]:
        """Pairs audited at the boosted rate: the first ``audit_boost_pairs`` pairs decided under
        a newly opened (or refitted) gate, when a bad gate does the most harm and the drift test
        has the fewest audits. Counted from the decisions stored so far, or this worker's own
        pairs routed under the version if more (several workers may each boost a batch more)."""
        boosted: set[int] = set()
        by_project: dict[int, list[Pair]] = {}
        for pair in pairs:
            by_project.setdefault(pair.project_id, []).append(pair)
        for project_id, group in by_project.items():
            routing = self._routing[project_id]
            if routing.audit_rate <= 0 or routing.audit_boost_rate <= routing.audit_rate:
                continue
            gate, name = self.gates.get(project_id)
            key = (project_id, name)
            if gate is None or not gate.open or key in self._boost_over:
                continue
            with Session(self.engine, expire_on_commit=False) as session:
                version = latest_version(session, project_id)
                if version is None or not version.open or version_name(version) != name:
                    continue
                decided = decided_under(session, project_id, version)
            seen = max(decided, self._routed_under.get(key, 0))
            left = max(0, routing.audit_boost_pairs - seen)
            boosted.update(p.id for p in group[:left])
            self._routed_under[key] = seen + len(group)
            if left <= len(group):
                self._boost_over.add(key)
        return boosted

    async def _call(
        self,
        spec: JudgeSpec,
        pair: Pair,
        order: str,
        rubric: str | None,
        semaphore: asyncio.Semaphore,
        responses: tuple[str, str] | None = None,
    ) -> JudgeCallResult:
        """One judge call on the pair (or on the pair's prompt with other ``responses``)."""
        response_a, response_b = responses or (pair.response_a, pair.response_b)
        tuned = self._tuned[pair.project_id][spec.model]
        # The judge's own limit first: a call waiting for its judge holds no global slot.
        async with tuned.limit or contextlib.nullcontext(), semaphore:
            result = await call_judge(
                spec.model,
                pair.prompt,
                response_a,
                response_b,
                order,
                api_base=spec.api_base,
                logprobs=spec.logprobs,
                rubric=rubric,
                policy=tuned.policy,
                allowed_api_bases=self._allowed_api_bases,
                options=tuned.options,
                aspects=tuned.aspects,
                weights=tuned.weights,
            )
        JUDGE_CALLS.labels(spec.model, "error" if result.error else "ok").inc()
        if result.error:
            JUDGE_ERRORS.labels(spec.model).inc()
        if result.attempts > 1:
            JUDGE_RETRIES.labels(spec.model).inc(result.attempts - 1)
        if result.latency_ms is not None:
            JUDGE_LATENCY.labels(spec.model).observe(result.latency_ms / 1000)
        if result.cost:
            JUDGE_COST.labels(spec.model).inc(result.cost)
        return result

    async def _judge_pair(
        self,
        pair: Pair,
        project: Project,
        cache: dict[tuple[str, str, str], Judgment],
        precheck: tuple[bool, list[str], list[str]],
        labelled: bool,
        boosted: bool,
        semaphore: asyncio.Semaphore,
        recheck: Recheck | None = None,
    ) -> PairOutcome:
        """Judge a pair in both orders and route it; stage by stage under an open cascade.

        Each stage's judges are called (cache first) only when the previous stage's calibrated
        confidence asks for them. The whole panel judges when the gate is closed (calibration
        needs every verdict), and pairs whose label will calibrate the gate.
        """
        routing, specs = self._routing[pair.project_id], self._specs[pair.project_id]
        if boosted:  # one of the first pairs under a new gate: audited at the boosted rate
            routing = self._boosted_routing[pair.project_id]
        keys = self._judge_keys[pair.project_id]
        gate, version = self.gates.get(project.id)
        stages = pair_stages(pair, gate, version, routing, labelled, list(specs))
        rows: list[dict[str, object]] = []  # every judgment routing reads
        new_rows: list[dict[str, object]] = []  # the ones to store (not already this pair's)
        for k, judges in enumerate(stages):
            if k and not await asyncio.to_thread(
                renew_lease, self.engine, self.worker_id, pair.id, self.settings.lease_seconds
            ):
                log.warning("pair %s: lease lost before cascade stage %d; another worker has it", pair.id, k)
                break  # store_outcomes will skip it: the new holder judges it
            for result in await self._judge_stage(pair, project, judges, cache, semaphore, (specs, keys)):
                row = self._row(result, pair, project, keys[result.judge])
                rows.append(row)
                if not (isinstance(result, Judgment) and result.pair_id == pair.id):
                    new_rows.append(row)
            # rows hold JudgmentView's fields by name (VIEW_FIELDS), typed object in the row dicts
            views = [JudgmentView(*(row[name] for name in VIEW_FIELDS)) for row in rows]  # type: ignore[arg-type]  # row mappings are untyped
            decision = route_pair(
                pair.id,
                views,
                precheck[0],
                gate,
                version,
                routing,
                precheck_injection=bool(precheck[2]),
                aspects=self._aspects[pair.project_id],
            )
            if decision.next_stage is None:
                break
        injection_reasons = precheck[2]
        if recheck is not None:
            found = await self._recheck(pair, project, rows, recheck, semaphore, specs)
            if found:
                injection_reasons = [*injection_reasons, *found]
                decision = route_pair(
                    pair.id,
                    views,
                    precheck[0],
                    gate,
                    version,
                    routing,
                    precheck_injection=True,
                    aspects=self._aspects[pair.project_id],
                )
        panel = panel_calls(specs.values())
        saved = panel - len(rows)
        if saved and pair.judged_at is None:  # counted once, at a pair's first judging
            JUDGE_CALLS_SAVED.labels(project.name).inc(saved)
        PAIRS_ROUTED.labels(decision.route).inc()
        return PairOutcome(
            pair_id=pair.id,
            judgments=new_rows,
            decision=decision_fields(decision, version, len(rows), panel),
            safety_flag=precheck[0],
            safety_reasons=precheck[1],
            injection_reasons=injection_reasons,
        )

    async def _judge_stage(
        self,
        pair: Pair,
        project: Project,
        judges: list[str],
        cache: dict[tuple[str, str, str], Judgment],
        semaphore: asyncio.Semaphore,
        panel: tuple[dict[str, JudgeSpec], dict[str, str]],
    ) -> list[JudgeCallResult | Judgment]:
        """The verdicts of ``judges`` on the pair in each order they judge: the cached ones (this
        pair's own, then the same content's) first, then the calls made for the others."""
        # The panel the pair's judging began with (``_judge_pair``'s): an edit meanwhile must
        # not change the judges under a pair in flight.
        specs, keys = panel
        results: list[JudgeCallResult | Judgment] = []
        calls = []
        for model in judges:
            for order in orders_for(specs[model], pair):
                hit = cache.get((f"own:{pair.id}", model, order)) or cache.get(
                    (pair.content_hash, keys[model], order)
                )
                if hit is not None:
                    JUDGE_CACHE_HITS.labels(model).inc()
                    results.append(hit)
                else:
                    calls.append(self._call(specs[model], pair, order, project.rubric, semaphore))
        results.extend(await asyncio.gather(*calls))
        return results

    async def _recheck(
        self,
        pair: Pair,
        project: Project,
        rows: list[dict[str, object]],
        recheck: Recheck,
        semaphore: asyncio.Semaphore,
        specs: dict[str, JudgeSpec],
    ) -> list[str]:
        """Ask each judge that gave a readable verdict once more, in the first order it was
        asked, with the suspicious spans removed; the reasons to flag the pair (empty when no
        verdict moved). Only pairs :func:`recheck_for` picks pay these calls."""
        first: dict[str, dict[str, object]] = {}
        for row in rows:
            # A replay judge only knows the texts it recorded: it cannot judge a changed one.
            replayed = str(row["judge"]).startswith(f"{REPLAY_PROVIDER}/")
            if row["error"] is None and side(str(row["verdict"])) is not None and not replayed:
                first.setdefault(str(row["judge"]), row)
        if not first:
            return []  # no readable verdict: the pair is already a human's (judge failure)
        calls = [
            self._call(specs[model], pair, str(row["order"]), project.rubric, semaphore, recheck.responses)
            for model, row in first.items()
        ]
        results = await asyncio.gather(*calls)
        before = [(model, str(row["verdict"])) for model, row in first.items()]
        after = [(r.verdict if r.error is None else None) for r in results]
        reasons = moved_reasons(recheck, before, after)
        INJECTION_RECHECKS.labels("moved" if reasons else "held").inc()
        return reasons

    @staticmethod
    def _row(result: JudgeCallResult | Judgment, pair: Pair, project: Project, key: str) -> dict[str, object]:
        """A judgment row; a cache hit keeps the verdict but records nothing paid."""
        row: dict[str, object] = {name: getattr(result, name) for name in JUDGMENT_FIELDS}
        row.update(
            content_hash=pair.content_hash, prompt_version=project.prompt_version, judge_key=key, cached=False
        )
        if isinstance(result, Judgment):
            row.update(
                latency_ms=0.0, prompt_tokens=None, completion_tokens=None, cost=0.0, attempts=0, cached=True
            )
        return row
