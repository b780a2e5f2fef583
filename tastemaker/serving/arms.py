"""The comparison-arm extension: a campaign answers a share of its traffic with another campaign or recommender.

Opt in with two tags on the campaign (CreateCampaign `tags` or TagResource; no wire shape changes):
`tastemaker:comparison-arm` = the ARN of an ACTIVE campaign or recommender of the same dataset group (for a
popularity arm, a campaign of aws-popularity-count), and `tastemaker:comparison-share` = the share of requests
it answers (default 0.1, at most 0.5). GetRecommendations on the campaign then draws per request: the arm's
answers carry recommendationIds tagged with the source "<campaign ARN>#comparison", the others the campaign's
own ARN, so metric attribution counts conversions per arm; the recommendations served per arm are counted in
memory and added to the store about once a second by a daemon thread. `tastemaker attribution --arms` reports
both arms' conversion rates with 95% intervals. Campaigns without the tags pay one cached lookup per request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

from tastemaker.control.recommendation_ids import comparison_label
from tastemaker.errors import TastemakerError
from tastemaker.services import Services
from tastemaker.serving.deployments import Deployment, deployment_cache
from tastemaker.serving.snapshots import Refreshing
from tastemaker.store import attribution, resources
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.serving")
ARM_TAG = "tastemaker:comparison-arm"
SHARE_TAG = "tastemaker:comparison-share"
DEFAULT_SHARE = 0.1
MAX_SHARE = 0.5
CONFIG_TTL_SECONDS = 1.0
FLUSH_SECONDS = 1.0
WINDOW_SECONDS = 900


@dataclass(frozen=True)
class ArmConfig:
    arm_arn: str
    arm_kind: str  # "campaign" | "recommender"
    share: float


def read_config(services: Services, campaign: Deployment) -> ArmConfig | None:
    """The campaign's comparison arm from its tags; a misconfigured one is logged and ignored."""
    with services.read_engine.connect() as conn:
        tags = {t["tag_key"]: t["tag_value"] for t in resources.get_tags(conn, campaign.arn)}
        arm = tags.get(ARM_TAG)
        if not arm:
            return None
        found = resources.find(conn, arm)
    try:
        share = float(tags.get(SHARE_TAG, DEFAULT_SHARE))
    except ValueError:
        share = -1.0
    if found is None or found.kind not in ("campaign", "recommender") or arm == campaign.arn \
            or found.dataset_group_arn != campaign.group_arn or not 0 < share <= MAX_SHARE:
        log.warning("ignoring the comparison arm of %s: %s=%r must be another campaign or recommender of the same "
                    "dataset group and %s=%r a number in (0, %s]", campaign.arn, ARM_TAG, arm, SHARE_TAG,
                    tags.get(SHARE_TAG), MAX_SHARE)
        return None
    return ArmConfig(arm, found.kind, share)


class ArmRouter:
    """Process-wide: campaign ARN -> its ArmConfig (re-read about once a second) and the served counts."""

    def __init__(self) -> None:
        self._configs = Refreshing(CONFIG_TTL_SECONDS)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._flusher: threading.Thread | None = None

    def config(self, services: Services, campaign: Deployment) -> ArmConfig | None:
        found: ArmConfig | None = self._configs.get(campaign.arn, lambda: read_config(services, campaign))
        return found

    def count(self, services: Services, campaign_arn: str, arm: str) -> None:
        window = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS
        with self._lock:
            self._counts[(campaign_arn, arm, window)] += 1
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_forever, args=(services,), daemon=True)
                self._flusher.start()

    def flush(self, services: Services) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        try:
            with services.engine.begin() as conn:
                attribution.add_exposures(conn, dict(counts))
        except Exception:
            log.exception("could not store comparison-arm counts")
            with self._lock:
                self._counts.update(counts)

    def _flush_forever(self, services: Services) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush(services)


def route(services: Services, dep: Deployment) -> tuple[Deployment, str, str | None]:
    """(what answers this request, the attribution source its recommendationId names, the arm to count it
    under once answered: "main", "comparison", or None for a campaign without an arm). The caller counts
    only an answered request (`ArmRouter.count`): a request that reruns off the event loop (NotWarm) or fails
    after routing must not be counted twice or at all."""
    if dep.kind != "campaign":
        return dep, dep.arn, None
    arms: ArmRouter = services.serving.arms
    config = arms.config(services, dep)
    if config is None:
        return dep, dep.arn, None
    if random.random() < config.share:
        try:  # (NotWarm passes: the request reruns off the event loop, where the arm's row is read)
            arm: Deployment | None = deployment_cache(services).resolve(services, config.arm_arn, config.arm_kind)
        except TastemakerError:  # the arm was deleted: the traffic stays with the campaign
            arm = None
        if arm is not None and arm.status == Status.ACTIVE and arm.model_prefix:
            return arm, comparison_label(dep.arn), "comparison"
    return dep, dep.arn, "main"
