"""Resolve a campaign or recommender ARN to what serves it, agreeing with the control plane (read-your-writes).

Serving keeps campaign, recommender, filter and event-tracker rows in memory (re-read in the background about
once a second) so that no database read lands on GetRecommendations. Read-your-writes on top of that, across
worker processes and replicas that share only the database:

1. Each process runs one ChangeWatch thread that, every POLL_SECONDS, reads the store's change counter (one
   primary-key read, bumped in the same transaction as every change to a campaign, recommender, filter or
   event tracker: store/changes.py) and, only when it moved, the change stamps -- (status, updatedAt) of
   each of those rows. It records when the poll *started* (`polled_at`): a snapshot started after a commit
   contains that commit. An idle deployment's poll costs one small query, whatever the number of resources;
   on SQLite not even that while nothing at all was committed (store/wakeups.py: an unchanged data_version
   proves it). Once no request has asked for IDLE_SECONDS, the thread stops polling and sleeps until a
   request comes (which then polls itself, 2.) or a store wake-up says a watched row changed (it then reads
   the stamps once, so tracker lookups stay current): an idle process costs no queries.
2. A request uses the snapshot only while it is younger than FRESH_SECONDS; past that (the thread stalled,
   or the process was idle) it polls itself first. The check costs one clock read, and comparing a cached
   view with the snapshot one dict lookup: nothing measurable on the hot path.
3. A cached Deployment (and filter row) carries the stamp of the row it was built from; when it differs from
   the snapshot's, or the row is not ACTIVE (the error path: pending, stopped, deleted, not found), it is
   re-read from the database before answering.
4. The control plane, after committing a change to an existing campaign, recommender, filter or event tracker
   (Update*, Delete*, Start/StopRecommender; api/app.py SETTLE_OPERATIONS), waits FRESH_SECONDS before it
   answers. Any request that starts after that answer sees a snapshot started after the commit (or polls),
   so every worker of every replica agrees with the answer. Status changes made by jobs (CREATE PENDING ->
   ACTIVE, START -> ACTIVE) need no wait: a view that is not ACTIVE is always re-read (3.), and a stop or
   delete was already refused from its PENDING status on. A job's change to a campaign that stays ACTIVE
   (the model switch of UpdateCampaign) reaches every process within about POLL_SECONDS of its commit plus
   the time that process takes to load the new model, which it does in the background while the previous
   model keeps answering (DeploymentCache).
5. When an event tracker's stamp changes, the watch re-reads PutEvents' trackingId lookup before it
   publishes the snapshot, so PutEvents refuses a deleted tracker's events under the same rule.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tastemaker.errors import ResourceNotFoundException
from tastemaker.realtime.inline import slow_step
from tastemaker.services import Services
from tastemaker.store import changes, resources
from tastemaker.store.records import Campaign, Recommender, SolutionVersion
from tastemaker.store.status import BUSY, Status
from tastemaker.store.wakeups import wakeups

log = logging.getLogger("tastemaker.serving")
ROW_TTL_SECONDS = 1.0  # background re-read of a cached row (the change watch catches changes sooner)
POLL_SECONDS = 0.05  # how often each process reads the change counter
# No request for this long: the watch stops polling (a cached row unused for 3 s is re-read inline anyway,
# snapshots.STALE_LIMIT x ROW_TTL_SECONDS, so the next request pays little more for polling itself).
IDLE_SECONDS = 5.0
FRESH_SECONDS = 0.25  # a snapshot older than this is not trusted; the control plane waits this long
LOAD_SWITCH_INTERVAL = 0.001  # seconds between GIL hand-offs while a model loads in the background
PREFETCHED_VERSIONS = 64  # update targets remembered as loaded ahead (then forgotten all at once)
Stamp = tuple[Any, ...]  # (status, updated_at) of a row; () when unknown


@dataclass(frozen=True)
class Deployment:
    """The serving view of one campaign or recommender."""

    arn: str
    kind: str  # "campaign" | "recommender"
    status: str
    group_arn: str
    model_prefix: str | None
    recipe_name: str  # the recipe that trained the model
    recipe_type: str
    config: dict[str, Any] = field(default_factory=dict)  # campaign_config / recommender_config (snake_case)
    use_case: Any = None  # tastemaker.recipes.catalog.UseCase for recommenders
    version_arn: str | None = None
    stamp: Stamp = ()  # the row's (status, updated_at) when this view was built
    upcoming_version_arn: str | None = None  # the version an update in progress will switch to (loaded ahead)

    @property
    def label(self) -> str:
        return "Campaign" if self.kind == "campaign" else "Recommender"


class ChangeWatch:
    """The latest change stamps of the watched kinds, polled by one background thread (see the module doc)."""

    def __init__(self) -> None:
        self.stamps: dict[str, Stamp] = {}
        self.polled_at = float("-inf")  # time.monotonic() when the poll behind `stamps` started
        self.asked_at = float("-inf")  # time.monotonic() of the last request that used the stamps
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # a request after an idle spell, or a store wake-up
        self._idle = False  # the thread waits for _wake rather than polling
        self._trackers: dict[str, Stamp] | None = None
        self._counter: int | None = None  # the change counter the stamps were read after
        self._version: int | None = None  # the store's data version read before that counter (SQLite)

    def current(self, services: Services) -> dict[str, Stamp]:
        """Stamps no older than FRESH_SECONDS (polling now, off the event loop, when they are older)."""
        now = self.asked_at = time.monotonic()
        if now - self.polled_at < FRESH_SECONDS:
            if self._idle:  # fresh from a wake-up's read while idle: poll again from now on
                self._wake.set()
            return self.stamps
        self._start(services)
        self._wake.set()  # the thread polls again from now on
        slow_step("change stamps")
        self.poll(services)
        return self.stamps

    def fresh(self) -> bool:
        now = self.asked_at = time.monotonic()
        if self._idle:
            self._wake.set()
        return now - self.polled_at < FRESH_SECONDS

    def poll(self, services: Services) -> None:
        with self._poll_lock:
            started = time.monotonic()
            version = wakeups(services.engine).version()  # SQLite: unchanged means nothing was committed since
            if version is not None and version == self._version:
                self.polled_at = max(self.polled_at, started)
                return
            with services.read_engine.connect() as conn:
                counter = changes.read(conn)  # before the stamps: a change committed in between is re-read later
                if counter == self._counter:
                    self._version = version
                    self.polled_at = max(self.polled_at, started)
                    return
                found = resources.versions(conn, changes.WATCHED_KINDS)
            trackers = {arn: stamp for arn, stamp in found.items() if ":event-tracker/" in arn}
            if self._trackers is not None and trackers != self._trackers:
                services.realtime.targets.reload(services)
                services.serving.trackers.forget_all()  # a new or changed tracker is seen by the next request
            self._trackers = trackers
            self.stamps = found
            self._counter, self._version = counter, version
            self.polled_at = max(self.polled_at, started)

    def _start(self, services: Services) -> None:
        if self._thread is not None:
            return
        with self._poll_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(services,), name="tastemaker-changes",
                                                daemon=True)
                self._thread.start()

    def _run(self, services: Services) -> None:
        wakeups(services.engine).subscribe("changes", self._wake.set)
        while True:
            if time.monotonic() - self.asked_at >= IDLE_SECONDS:
                self._idle = True
                self._wake.wait()  # idle: until a request comes or a watched row changes
                self._idle = False
            self._wake.clear()
            try:
                self.poll(services)
            except Exception:  # requests poll themselves while this fails (FRESH_SECONDS)
                log.exception("reading change stamps failed")
            self._wake.wait(POLL_SECONDS)  # a wake-up (a watched row changed) polls at once


class _BackgroundLoads:
    """While a model loads in a background thread (a switch or an update's target), the interpreter hands the GIL
    over every LOAD_SWITCH_INTERVAL seconds instead of every 5 ms (sys.setswitchinterval, process-wide): the
    load's Python-level steps then delay the event loop's requests by about 1 ms at a time rather than 5 ms per
    GIL hand-off (several per request). The previous interval is restored when the last load ends. What a load
    built (catalogue, id dicts: ~10^5 objects per model) is then moved out of the cyclic collector (gc.freeze, as
    the API does after a cold request), so that no full collection walks it while requests wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, LOAD_SWITCH_INTERVAL))
            self._running += 1

    def __exit__(self, *_exc: object) -> None:
        gc.freeze()
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


BACKGROUND_LOADS = _BackgroundLoads()


class DeploymentCache:
    """ARN -> Deployment (or the error reading it), checked against the change watch on every request.

    A model switch never stalls requests: when the row of an ACTIVE deployment now names another model (an
    UpdateCampaign's switch, a retrained recommender), this process goes on serving the Deployment it has while
    one background thread loads the new model, its index and catalogue, and publishes the new Deployment once
    they are in memory. Every other change (status, configuration on the same model, deletion) is published
    when the row is read, as before."""

    def __init__(self) -> None:
        from tastemaker.serving.snapshots import Refreshing

        self._rows = Refreshing(ROW_TTL_SECONDS)
        self.changes = ChangeWatch()
        self._lock = threading.Lock()
        self._switching: dict[str, Stamp] = {}  # ARN -> stamp of the row whose model loads in the background
        self._prefetched: set[str] = set()  # versions an update in progress will switch to, loaded ahead

    def resolve(self, services: Services, arn: str, kind: str) -> Deployment:
        stamps = self.changes.current(services)

        def load() -> Deployment:
            return self._load(services, arn, kind)

        try:
            value = self._rows.get(arn, load)
        except ResourceNotFoundException:
            value = self._rows.reload(arn, load)  # the error path: it may exist by now
        else:
            stamp = stamps.get(arn)
            switching = value.status == Status.ACTIVE and stamp is not None and self._switching.get(arn) == stamp
            if (value.status != Status.ACTIVE or value.stamp != stamp) and not switching:
                value = self._rows.reload(arn, load)
        if value.kind != kind:
            raise ResourceNotFoundException(f"Could not find {kind} {arn}.")
        return value  # type: ignore[no-any-return]

    def _load(self, services: Services, arn: str, kind: str) -> Deployment:
        """The row's Deployment, warmed; or, when the row switched an ACTIVE deployment to another model, the
        Deployment serving now (the switch then completes in the background, see the class doc)."""
        fresh = _read(services, arn, kind)
        serving = self._rows.peek(arn)
        if (serving is not None and serving.status == Status.ACTIVE and serving.model_prefix
                and fresh.status == Status.ACTIVE and fresh.model_prefix
                and fresh.model_prefix != serving.model_prefix and fresh.kind == serving.kind):
            self._switch_later(services, arn, fresh)
            return serving  # type: ignore[no-any-return]
        with self._lock:
            self._switching.pop(arn, None)  # a switch still loading is superseded by this row
        _warm(services, fresh)
        if fresh.upcoming_version_arn:
            self._prefetch(services, fresh)
        return fresh

    def _prefetch(self, services: Services, dep: Deployment) -> None:
        """Load the model an update in progress will switch to, in the background, while its job loads and checks
        it: the switch then finds it in memory and reaches this process within POLL_SECONDS of its commit."""
        version_arn = dep.upcoming_version_arn or ""
        with self._lock:
            if version_arn in self._prefetched:
                return
            if len(self._prefetched) >= PREFETCHED_VERSIONS:
                self._prefetched.clear()
            self._prefetched.add(version_arn)
        threading.Thread(target=_warm_version, args=(services, dep, version_arn), name="deployment-prefetch",
                         daemon=True).start()

    def _switch_later(self, services: Services, arn: str, fresh: Deployment) -> None:
        with self._lock:
            if self._switching.get(arn) == fresh.stamp:
                return
            self._switching[arn] = fresh.stamp
        threading.Thread(target=self._switch, args=(services, arn, fresh), name="deployment-switch",
                         daemon=True).start()

    def _switch(self, services: Services, arn: str, fresh: Deployment) -> None:
        try:
            with BACKGROUND_LOADS:
                _warm(services, fresh)
        finally:
            with self._lock:  # unless a newer row was read meanwhile: that one is (or will be) published instead
                if self._switching.get(arn) == fresh.stamp:
                    del self._switching[arn]
                    self._rows.put(arn, fresh)

    def forget(self, arn: str) -> None:
        self._rows.forget(arn)


def deployment_cache(services: Services) -> DeploymentCache:
    return services.serving.deployments


def _read(services: Services, arn: str, kind: str) -> Deployment:
    """The row's Deployment (not warmed)."""
    with services.read_engine.connect() as conn:
        row = resources.get(conn, arn, kind)
        found = _campaign(services, conn, row) if kind == "campaign" else _recommender(row)
    return dataclasses.replace(found, stamp=(row.status, row.updated_at))


def _warm(services: Services, dep: Deployment) -> None:
    """Load what the deployment serves (model, compiled kernels, saved candidate index, catalogue) before requests
    see it. A failure here is only logged: the request path loads again and reports it."""
    if dep.status != Status.ACTIVE or not dep.model_prefix:
        return
    from tastemaker.serving.approx import warm_index
    from tastemaker.serving.engine import catalog_for
    from tastemaker.serving.models import model_cache

    try:
        loaded = model_cache(services).get(services, dep.model_prefix)
        if dep.recipe_type == "USER_PERSONALIZATION":
            warm_index(services, loaded)
        catalog_for(services, dep, loaded)  # the model's catalogue, else built by the first requests (GIL-bound)
    except Exception:  # see the docstring
        log.exception("warming %s for %s failed", dep.model_prefix, dep.arn)


def _warm_version(services: Services, dep: Deployment, version_arn: str) -> None:
    """Warm what `dep` would serve on another solution version (an update's target)."""
    try:
        with services.read_engine.connect() as conn:
            version = resources.find(conn, version_arn, "solution_version")
        if version is not None and version.status == Status.ACTIVE:
            with BACKGROUND_LOADS:
                _warm(services, _on_version(dep, version_arn, version))
    except Exception:  # only a head start: the switch loads it again
        log.exception("loading %s ahead of its campaign update failed", version_arn)


def _campaign(services: Services, conn: Any, row: resources.Resource) -> Deployment:
    campaign = Campaign.of(row)
    version_arn = campaign.serving_version_arn or campaign.solution_version_arn
    version = resources.find(conn, version_arn, "solution_version") if version_arn else None
    update = campaign.latest_campaign_update
    upcoming = update.get("solution_version_arn") if update.get("status") in BUSY else None
    dep = Deployment(row.arn, "campaign", row.status or "", row.dataset_group_arn or "", None, "", "",
                     dict(campaign.campaign_config), upcoming_version_arn=upcoming if upcoming != version_arn else None)
    return dep if version is None else _on_version(dep, version_arn, version)


def _on_version(dep: Deployment, version_arn: str, version: resources.Resource) -> Deployment:
    trained = SolutionVersion.of(version)
    return dataclasses.replace(dep, model_prefix=trained.model_prefix, recipe_name=trained.recipe_name,
                               recipe_type=_recipe_type(trained.recipe_name), version_arn=version_arn)


def _recommender(row: resources.Resource) -> Deployment:
    from tastemaker.recipes.catalog import domain_use_case

    recommender = Recommender.of(row)
    use_case = domain_use_case(recommender.recipe_arn)
    config = dict(recommender.recommender_config)
    return Deployment(row.arn, "recommender", row.status or "", row.dataset_group_arn or "",
                      recommender.model_prefix, use_case.engine_recipe, _recipe_type(use_case.engine_recipe),
                      config, use_case)


def _recipe_type(recipe_name: str) -> str:
    from tastemaker.recipes import get_recipe

    try:
        return get_recipe(recipe_name).recipe_type
    except Exception:  # noqa: BLE001 - an unknown recipe cannot be served; the model load says why
        return ""
