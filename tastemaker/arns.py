"""Build and parse ARNs for every Personalize resource kind."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from tastemaker.errors import InvalidInputException

# resource kind -> ARN resource-part prefix
PREFIXES = {
    "dataset_group": "dataset-group",
    "dataset": "dataset",
    "schema": "schema",
    "dataset_import_job": "dataset-import-job",
    "dataset_export_job": "dataset-export-job",
    "data_deletion_job": "data-deletion-job",
    "solution": "solution",
    "solution_version": "solution",
    "campaign": "campaign",
    "event_tracker": "event-tracker",
    "filter": "filter",
    "recommender": "recommender",
    "batch_inference_job": "batch-inference-job",
    "batch_segment_job": "batch-segment-job",
    "metric_attribution": "metric-attribution",
}
KIND_BY_PREFIX = {v: k for k, v in PREFIXES.items() if k != "solution_version"}

_ARN = re.compile(r"^arn:([a-z\d-]+):personalize:([^:]*):([^:]*):(.+)$")


@dataclass(frozen=True)
class Arn:
    partition: str
    region: str
    account: str
    resource: str  # e.g. "dataset-group/my-group"

    @property
    def kind(self) -> str:
        prefix, _, rest = self.resource.partition("/")
        if prefix == "solution" and rest.count("/") == 1 and not rest.endswith("/$LATEST"):
            return "solution_version"
        kind = KIND_BY_PREFIX.get(prefix)
        if kind is None:
            raise InvalidInputException(f"ARN resource type '{prefix}' is not a Personalize resource type.")
        return kind

    def __str__(self) -> str:
        return f"arn:{self.partition}:personalize:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn:
    match = _ARN.match(text or "")
    if not match:
        raise InvalidInputException(f"'{text}' is not a valid Personalize ARN.")
    return Arn(match.group(1), match.group(2), match.group(3), match.group(4))


def build_arn(kind: str, region: str, account: str, *parts: str) -> str:
    return f"arn:aws:personalize:{region}:{account}:{PREFIXES[kind]}/" + "/".join(parts)


def short_id() -> str:
    """The 8-hex id used in solution-version and event-tracker ARNs."""
    return secrets.token_hex(4)
