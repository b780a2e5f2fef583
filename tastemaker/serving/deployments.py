"""Resolve a campaign or recommender ARN to what serves it, re-reading the row at most once a second."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tastemaker.errors import ResourceNotFoundException
from tastemaker.services import Services
from tastemaker.store import resources
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.serving")
ROW_TTL_SECONDS = 1.0  # how stale a worker's view of a campaign may be (UpdateCampaign, Stop/StartRecommender)


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

    @property
    def label(self) -> str:
        return "Campaign" if self.kind == "campaign" else "Recommender"


class DeploymentCache:
    """ARN -> Deployment (or the error reading it), refreshed in the background about once a second."""

    def __init__(self) -> None:
        from tastemaker.serving.snapshots import Refreshing

        self._rows = Refreshing(ROW_TTL_SECONDS)

    def resolve(self, services: Services, arn: str, kind: str) -> Deployment:
        value = self._rows.get(arn, lambda: _read(services, arn, kind))
        if value.kind != kind:
            raise ResourceNotFoundException(f"Could not find {kind} {arn}.")
        return value

    def forget(self, arn: str) -> None:
        self._rows.forget(arn)


def deployment_cache(services: Services) -> DeploymentCache:
    return services.serving.deployments


def _read(services: Services, arn: str, kind: str) -> Deployment:
    with services.engine.connect() as conn:
        row = resources.get(conn, arn, kind)
        found = _campaign(services, conn, row) if kind == "campaign" else _recommender(row)
    _warm(services, found)
    return found


def _warm(services: Services, dep: Deployment) -> None:
    """Load what the deployment serves (model, compiled kernels, saved candidate index) before requests see it.
    A refresh runs in the background while requests keep the previous Deployment, so when a row switches to a
    new model (UpdateCampaign, a retrained recommender) they go on with the old one until the new one is loaded
    instead of each worker's first requests waiting for the load. A failure here is only logged: the request
    path loads again and reports it."""
    if dep.status != Status.ACTIVE or not dep.model_prefix:
        return
    from tastemaker.serving.approx import warm_index
    from tastemaker.serving.models import model_cache

    try:
        loaded = model_cache(services).get(services, dep.model_prefix)
        if dep.recipe_type == "USER_PERSONALIZATION":
            warm_index(services, loaded)
    except Exception:  # see the docstring
        log.exception("warming %s for %s failed", dep.model_prefix, dep.arn)


def _campaign(services: Services, conn: Any, row: resources.Resource) -> Deployment:
    body = row.body
    version_arn = body.get("serving_version_arn") or body.get("solution_version_arn")
    version = resources.find(conn, version_arn, "solution_version") if version_arn else None
    config = dict(body.get("campaign_config") or {})
    if version is None:
        return Deployment(row.arn, "campaign", row.status or "", row.dataset_group_arn or "", None, "", "", config)
    recipe = version.body.get("trained_recipe") or (version.body.get("recipe_arn") or "").rsplit("/", 1)[-1]
    return Deployment(row.arn, "campaign", row.status or "", row.dataset_group_arn or "",
                      version.body.get("model_prefix"), recipe, _recipe_type(recipe), config, None, version_arn)


def _recommender(row: resources.Resource) -> Deployment:
    from tastemaker.recipes.catalog import domain_use_case

    body = row.body
    use_case = domain_use_case(body["recipe_arn"])
    config = dict(body.get("recommender_config") or {})
    return Deployment(row.arn, "recommender", row.status or "", row.dataset_group_arn or "",
                      body.get("model_prefix"), use_case.engine_recipe, _recipe_type(use_case.engine_recipe),
                      config, use_case)


def _recipe_type(recipe_name: str) -> str:
    from tastemaker.recipes import get_recipe

    try:
        return get_recipe(recipe_name).recipe_type
    except Exception:  # noqa: BLE001 - an unknown recipe cannot be served; the model load says why
        return ""
