"""recommendationIds carry their issuer's digest and stay Personalize-shaped."""

from __future__ import annotations

import re

from tastemaker.control.recommendation_ids import digest_of, source_digest, tag, tag_answer
from tastemaker.serving.engine import rid

CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/a"
SHAPE = re.compile(r"^RID-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_tagged_ids_name_their_issuer_and_keep_the_shape() -> None:
    first, second = tag(rid(), CAMPAIGN), tag(rid(), CAMPAIGN)
    assert SHAPE.match(first) and len(first) <= 40
    assert first != second
    assert digest_of(first) == digest_of(second) == source_digest(CAMPAIGN)
    assert digest_of(tag(rid(), CAMPAIGN + "x")) != source_digest(CAMPAIGN)
    assert tag_answer({"recommendation_id": first}, CAMPAIGN + "x")["recommendation_id"] != first


def test_foreign_ids_have_no_issuer() -> None:
    assert digest_of("my-own-id") is None and digest_of(None) is None and digest_of("RID-12") is None
