"""Campaigns: create/describe/list/update/delete, and following `solution/NAME/$LATEST`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    DELETABLE,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
    require_status,
    schedule,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.control.solutions import solution_of_latest
from tastemaker.errors import InvalidInputException, LimitExceededException, ResourceInUseException
from tastemaker.services import Services
from tastemaker.store import queue, resources
from tastemaker.store.records import Campaign, SolutionVersion
from tastemaker.store.status import BUSY, Status

KIND, VERSION = "campaign", "solution_version"
MAX_CAMPAIGNS_PER_GROUP = 5
EXPLORATION_KEYS = ("explorationWeight", "explorationItemAgeCutOff")
DEFAULT_EXPLORATION = {"explorationWeight": "0.3", "explorationItemAgeCutOff": "30"}


def _latest_active_version(conn: sa.Connection, solution_arn: str) -> resources.Resource | None:
    versions = [v for v in resources.children(conn, kind=VERSION, parent_arn=solution_arn) if v.status == Status.ACTIVE]
    return versions[-1] if versions else None


def resolve_version(conn: sa.Connection, arn: str) -> tuple[resources.Resource, str | None]:
    """(the ACTIVE solution version to deploy, the solution ARN when `arn` is `solution/NAME/$LATEST`)."""
    solution_arn = solution_of_latest(arn)
    if solution_arn is not None:
        resources.get(conn, solution_arn, "solution")
        version = _latest_active_version(conn, solution_arn)
        if version is None:
            raise ResourceInUseException(f"Solution {solution_arn} has no ACTIVE solution version to deploy yet.")
        return version, solution_arn
    version = resources.get(conn, arn, VERSION)
    require_status(version, (Status.ACTIVE,), "deploy the solution version")
    return version, None


def check_config(config: dict[str, Any] | None, version: resources.Resource, follows: str | None) -> dict[str, Any]:
    """Validate campaignConfig and fill Personalize's defaults (exploration for aws-user-personalization)."""
    config = dict(config or {})
    recipe = SolutionVersion.of(version).recipe_name
    exploration = config.get("item_exploration_config")
    if exploration:
        unknown = [k for k in exploration if k not in EXPLORATION_KEYS]
        if unknown:
            raise InvalidInputException(f"itemExplorationConfig accepts {' and '.join(EXPLORATION_KEYS)}; "
                                        f"got {unknown[0]}.")
        check_number(exploration, "explorationWeight", 0.0, 1.0, inclusive_low=True)
        check_number(exploration, "explorationItemAgeCutOff", 0.0, None, inclusive_low=False)
        if not _explores(recipe):
            raise InvalidInputException(f"itemExplorationConfig only applies to aws-user-personalization; this "
                                        f"version was trained with {recipe}.")
    elif _explores(recipe):
        config["item_exploration_config"] = dict(DEFAULT_EXPLORATION)
    for key, value in (config.get("ranking_influence") or {}).items():
        if key not in ("POPULARITY", "FRESHNESS") or not 0.0 <= float(value) <= 1.0:
            raise InvalidInputException(f"rankingInfluence {key}={value} is not valid: use POPULARITY or FRESHNESS "
                                        "with a value from 0 to 1.")
    if config.get("sync_with_latest_solution_version") and follows is None:
        raise InvalidInputException("syncWithLatestSolutionVersion needs solutionVersionArn in the form "
                                    "arn:...:solution/NAME/$LATEST.")
    return config


def _explores(recipe: str) -> bool:
    from tastemaker.recipes import get_recipe

    try:
        return get_recipe(recipe).explores_new_items
    except InvalidInputException:  # a recipe this build no longer has: nothing to explore with
        return False


def check_number(config: dict[str, str], key: str, low: float, high: float | None, *, inclusive_low: bool) -> None:
    if key not in config:
        return
    try:
        value = float(config[key])
    except (TypeError, ValueError):
        raise InvalidInputException(f"itemExplorationConfig {key} must be a number, got {config[key]!r}.") from None
    too_low = value < low if inclusive_low else value <= low
    if too_low or (high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f"greater than {low:g}"
        raise InvalidInputException(f"itemExplorationConfig {key} must be {bounds}, got {config[key]!r}.")


@operation("CreateCampaign")
def create_campaign(ctx: RequestContext, *, name: str, solution_version_arn: str,
                    min_provisioned_tps: int | None = None, campaign_config: dict[str, Any] | None = None,
                    tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    with ctx.engine.begin() as conn:
        version, follows = resolve_version(conn, solution_version_arn)
        # Row locks (PostgreSQL) serialise the count below with concurrent creates, and the deploy with a
        # DeleteSolution or DeleteDatasetGroup: group first, then solution (the order every writer takes).
        resources.get(conn, version.dataset_group_arn or "", "dataset_group", lock=True)
        locked_in(conn, version.parent_arn or "", "solution", (Status.ACTIVE,),
                  "deploy a version of the solution")
        version, follows = resolve_version(conn, solution_version_arn)
        config = check_config(campaign_config, version, follows)
        live = [c for c in resources.children(conn, kind=KIND, dataset_group_arn=version.dataset_group_arn)
                if c.status != Status.DELETE_PENDING]
        if len(live) >= MAX_CAMPAIGNS_PER_GROUP:
            raise LimitExceededException(f"Dataset group {version.dataset_group_arn} already has {len(live)} "
                                         f"campaigns (the limit is {MAX_CAMPAIGNS_PER_GROUP}).")
        body = {"name": name, "campaign_arn": arn, "solution_version_arn": version.arn,
                "min_provisioned_tps": min_provisioned_tps or 1, "campaign_config": config,
                "follows_solution_arn": follows, "dataset_group_arn": version.dataset_group_arn}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=version.dataset_group_arn,
                         parent_arn=SolutionVersion.of(version).solution_arn)
        queue.enqueue(conn, queue.JobKind.CAMPAIGN_DEPLOY, arn)
    return {"campaign_arn": arn}


@operation("DescribeCampaign")
def describe_campaign(ctx: RequestContext, *, campaign_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "campaign", campaign_arn)


@operation("ListCampaigns")
def list_campaigns(ctx: RequestContext, *, solution_arn: str | None = None, next_token: str | None = None,
                   max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "campaigns", next_token=next_token, max_results=max_results,
                     parent=("solution", solution_arn))


def _update_busy(campaign: resources.Resource) -> bool:
    return Campaign.of(campaign).latest_campaign_update.get("status") in BUSY


@operation("UpdateCampaign")
def update_campaign(ctx: RequestContext, *, campaign_arn: str, solution_version_arn: str | None = None,
                    min_provisioned_tps: int | None = None,
                    campaign_config: dict[str, Any] | None = None) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        campaign = locked_in(conn, campaign_arn, KIND, (Status.ACTIVE, Status.CREATE_FAILED),
                             "update the campaign")
        if _update_busy(campaign):
            raise ResourceInUseException(f"Campaign {campaign_arn} is already being updated; wait until "
                                         "latestCampaignUpdate is ACTIVE.")
        current = Campaign.of(campaign)
        follows = current.follows_solution_arn
        if solution_version_arn:
            version, follows = resolve_version(conn, solution_version_arn)
        else:
            version = resources.get(conn, current.solution_version_arn, VERSION)
        if version.dataset_group_arn != campaign.dataset_group_arn:
            raise InvalidInputException(f"Solution version {version.arn} belongs to another dataset group than "
                                        f"campaign {campaign_arn}.")
        config = dict(current.campaign_config)
        if campaign_config is not None:
            config.update(campaign_config)
            if "item_exploration_config" not in campaign_config:
                config.pop("item_exploration_config", None)
        config = check_config(config, version, follows)
        start_update(conn, campaign, version.arn, follows, min_provisioned_tps or current.min_provisioned_tps,
                     config)
    return {"campaign_arn": campaign_arn}


def start_update(conn: sa.Connection, campaign: resources.Resource, version_arn: str, follows: str | None,
                 min_tps: int, config: dict[str, Any]) -> None:
    """Record latestCampaignUpdate (CREATE PENDING) and queue the job that loads the new version."""
    ts = resources.now()
    update = {"solution_version_arn": version_arn, "min_provisioned_tps": min_tps, "campaign_config": config,
              "follows_solution_arn": follows, "status": Status.CREATE_PENDING, "creation_date_time": ts,
              "last_updated_date_time": ts}
    resources.update(conn, campaign.arn, changes={"latest_campaign_update": update})
    queue.enqueue(conn, queue.JobKind.CAMPAIGN_UPDATE, campaign.arn)


@operation("DeleteCampaign")
def delete_campaign(ctx: RequestContext, *, campaign_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        campaign = locked_in(conn, campaign_arn, KIND, DELETABLE, "delete the campaign")
        if _update_busy(campaign):
            raise ResourceInUseException(f"Campaign {campaign_arn} is being updated; delete it when "
                                         "latestCampaignUpdate is ACTIVE.")
        schedule(conn, campaign_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


# --- following solution/NAME/$LATEST -------------------------------------------------------------------

def reconcile_followers(services: Services) -> int:
    """Start the update of every campaign that follows its solution's $LATEST and is behind its newest ACTIVE
    version (one that was busy when the version turned ACTIVE); returns how many updates started. Run by the
    job runner's maintenance loop: reads (DescribeCampaign, serving) never change anything."""
    started = 0
    with services.read_engine.connect() as conn:
        followers = [c for c in resources.children(conn, kind=KIND) if c.status == Status.ACTIVE
                     and Campaign.of(c).campaign_config.get("sync_with_latest_solution_version")]
        for campaign in followers:
            started += reconcile_latest(services, conn, campaign)
    return started


def reconcile_latest(services: Services, conn: sa.Connection, campaign: resources.Resource) -> bool:
    """If a syncing campaign is behind its solution's newest ACTIVE version, start the update; True if started."""
    follows = Campaign.of(campaign).follows_solution_arn
    if not follows or _update_busy(campaign):
        return False
    latest = _latest_active_version(conn, follows)
    if latest is None or latest.arn == Campaign.of(campaign).solution_version_arn:
        return False
    last = Campaign.of(campaign).latest_campaign_update
    if last.get("solution_version_arn") == latest.arn and last.get("status") == Status.CREATE_FAILED:
        return False  # that version failed to deploy once; do not retry it forever
    follow_latest(services, latest.arn)
    return True


def follow_latest(services: Services, version_arn: str) -> None:
    """Move every campaign syncing with this version's solution to it (called when a version turns ACTIVE)."""
    with services.engine.begin() as conn:
        version = resources.find(conn, version_arn, VERSION)
        if version is None or version.status != Status.ACTIVE:
            return
        solution_arn = SolutionVersion.of(version).solution_arn
        for campaign in resources.children(conn, kind=KIND, parent_arn=solution_arn):
            config = Campaign.of(campaign).campaign_config
            if (campaign.status != Status.ACTIVE or not config.get("sync_with_latest_solution_version")
                    or Campaign.of(campaign).follows_solution_arn != solution_arn):
                continue
            current = resources.get(conn, campaign.arn, KIND, lock=True)
            if _update_busy(current) or Campaign.of(current).solution_version_arn == version_arn:
                continue
            start_update(conn, current, version_arn, solution_arn,
                         Campaign.of(current).min_provisioned_tps, config)
