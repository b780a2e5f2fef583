"""recommendationIds that say which campaign or recommender issued them, at no cost to the request.

A recommendationId is "RID-" and a version-4 UUID (tastemaker.serving.engine.rid). Its first 8 hex digits are
replaced by the first 8 of SHA-1(ARN) of the campaign or recommender that answered: no write and no lookup on
the request path (a cached digest and a string splice), 96 random bits left. Metric attribution maps an event's
RECOMMENDATION_ID back by comparing those digits with the digests of the group's campaigns and recommenders.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

PREFIX = "RID-"
DIGITS = 8


@lru_cache(maxsize=4096)
def source_digest(arn: str) -> str:
    return hashlib.sha1(arn.encode()).hexdigest()[:DIGITS]


def tag(recommendation_id: str, arn: str) -> str:
    """The id with its first 8 hex digits naming `arn`."""
    if not recommendation_id.startswith(PREFIX) or len(recommendation_id) < len(PREFIX) + DIGITS:
        return recommendation_id
    return PREFIX + source_digest(arn) + recommendation_id[len(PREFIX) + DIGITS:]


def tag_answer(answer: dict[str, Any], arn: str) -> dict[str, Any]:
    """A runtime answer with its recommendation_id tagged (in place)."""
    if "recommendation_id" in answer:
        answer["recommendation_id"] = tag(answer["recommendation_id"], arn)
    return answer


def digest_of(recommendation_id: str | None) -> str | None:
    """The 8 digits naming the issuer, or None for an id that is not ours."""
    if not recommendation_id or not recommendation_id.startswith(PREFIX):
        return None
    digits = recommendation_id[len(PREFIX):len(PREFIX) + DIGITS]
    return digits if len(digits) == DIGITS else None


COMPARISON_SUFFIX = "#comparison"


def comparison_label(campaign_arn: str) -> str:
    """The attribution source of a campaign's traffic answered by its comparison arm (tastemaker.serving.arms)."""
    return campaign_arn + COMPARISON_SUFFIX
