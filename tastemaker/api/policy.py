"""IAM-style access-key policies: parse a policy document, decide a request, and name what a request acts on.

Evaluation is IAM's for identity-based policies: a request is allowed only when some Allow statement matches its
action and every resource it acts on, and no Deny statement matches (an explicit Deny wins; no matching Allow is
an implicit deny). Patterns take the wildcards `*` (any run of characters, `:` and `/` included) and `?` (one
character); actions compare case-insensitively, resource ARNs case-sensitively; NotAction / NotResource match what
their list does not. Each element compiles once to one regular expression, and what can be decided from the action
alone (the usual case: the action is allowed on every resource) is cached per action, so checking a request is a
dict lookup. `request_resources` derives the ARNs a call acts on from the botocore input shape: Create* calls the
ARN they create, List* calls `*`, every other call each Personalize ARN it names (a trackingId names its event
tracker).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from botocore import xform_name
from botocore.model import Shape

from tastemaker.arns import PREFIXES, build_arn
from tastemaker.errors import InvalidInputException

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"}
ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Admin", "Effect": "Allow", "Action": "personalize:*", "Resource": "*"}],
}
_ACTION = re.compile(r"^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$")
_PERSONALIZE_ARN = re.compile(r"^arn:[a-z\d-]+:personalize:")


def _glob(patterns: Sequence[str], ignore_case: bool) -> re.Pattern[str]:
    parts = ("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in p) for p in patterns)
    return re.compile("(?:" + "|".join(parts) + ")\\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@dataclass(frozen=True)
class _Element:
    """One Action/NotAction or Resource/NotResource element: its patterns as one expression."""

    pattern: re.Pattern[str]
    negated: bool
    matches_all: bool  # a positive element with the pattern "*"

    def __call__(self, text: str) -> bool:
        return (self.pattern.match(text) is not None) != self.negated


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    action: _Element
    resource: _Element


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the resource it failed on and whether a Deny statement matched."""

    resource: str
    explicit: bool


@dataclass(frozen=True)
class _ActionPlan:
    allow_all: bool  # allowed on every resource: no Deny matches the action, an Allow matches it with "*"
    allows: tuple[Statement, ...]
    denies: tuple[Statement, ...]


class Policy:
    """A parsed policy document; `check(action, resources)` returns None (allowed) or a Refusal."""

    def __init__(self, statements: Sequence[Statement], document: dict[str, Any]) -> None:
        self.statements = tuple(statements)
        self.document = document
        self._plans: dict[str, _ActionPlan] = {}

    @classmethod
    def parse(cls, document: str | bytes | Mapping[str, Any]) -> Policy:
        """Validate a policy document (JSON text or a dict); bad input raises InvalidInputException naming it."""
        if isinstance(document, str | bytes):
            try:
                document = orjson.loads(document)
            except orjson.JSONDecodeError as exc:
                raise InvalidInputException(f"The policy is not valid JSON: {exc}.") from exc
        if not isinstance(document, Mapping):
            raise InvalidInputException("A policy is a JSON object with a \"Statement\" list.")
        doc = dict(document)
        unknown = set(doc) - {"Version", "Id", "Statement"}
        if unknown:
            raise InvalidInputException(f"Unknown policy element(s) {sorted(unknown)}; a policy has Version, Id "
                                        "and Statement.")
        if "Version" in doc and doc["Version"] not in VERSIONS:
            raise InvalidInputException(f"Policy Version {doc['Version']!r} is not one of {', '.join(VERSIONS)}.")
        raw = doc.get("Statement")
        raw_list = [raw] if isinstance(raw, Mapping) else raw
        if not isinstance(raw_list, list) or not raw_list:
            raise InvalidInputException("The policy needs a \"Statement\": one statement object or a non-empty "
                                        "list of them.")
        return cls([_statement(i + 1, s) for i, s in enumerate(raw_list)], doc)

    def check(self, action: str, resources: Callable[[], Sequence[str]]) -> Refusal | None:
        """None when `action` is allowed on every resource `resources()` names (called only when the answer
        depends on the resource), else the first refusal."""
        plan = self._plans.get(action)
        if plan is None:
            plan = self._plans.setdefault(action, self._plan(action))
        if plan.allow_all:
            return None
        for resource in resources() or ("*",):
            if any(s.resource(resource) for s in plan.denies):
                return Refusal(resource, explicit=True)
            if not any(s.resource(resource) for s in plan.allows):
                return Refusal(resource, explicit=False)
        return None

    def _plan(self, action: str) -> _ActionPlan:
        allows = tuple(s for s in self.statements if s.effect == "Allow" and s.action(action))
        denies = tuple(s for s in self.statements if s.effect == "Deny" and s.action(action))
        return _ActionPlan(not denies and any(s.resource.matches_all for s in allows), allows, denies)

    @property
    def is_admin(self) -> bool:
        """Allows every Personalize action on every resource and denies nothing (what may replace the root)."""
        return not any(s.effect == "Deny" for s in self.statements) and any(
            s.action("personalize:*") and s.resource.matches_all for s in self.statements if s.effect == "Allow")

    def summary(self) -> str:
        """One line for listings, e.g. `Allow personalize:GetRecommendations on arn:...:campaign/shop`."""
        parts = []
        for s in self.document["Statement"] if isinstance(self.document["Statement"], list) else [
                self.document["Statement"]]:
            actions = s.get("Action", s.get("NotAction"))
            resources = s.get("Resource", s.get("NotResource"))
            parts.append(f"{s['Effect']} {','.join(_as_list(actions))} on {','.join(_as_list(resources))}")
        return "; ".join(parts)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _statement(number: int, raw: Any) -> Statement:
    where = f"Policy statement {number}"
    if not isinstance(raw, Mapping):
        raise InvalidInputException(f"{where} is not a JSON object.")
    if "Condition" in raw:
        raise InvalidInputException(f"{where} has a Condition, which Tastemaker access keys do not evaluate; "
                                    "scope the key with Action and Resource instead.")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise InvalidInputException(f"{where} has a Principal: a key's policy is identity-based and applies to "
                                    "the key itself; remove Principal.")
    unknown = set(raw) - STATEMENT_KEYS
    if unknown:
        raise InvalidInputException(f"{where} has unknown element(s) {sorted(unknown)}; use "
                                    f"{', '.join(sorted(STATEMENT_KEYS))}.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise InvalidInputException(f"{where}: Effect must be \"Allow\" or \"Deny\", not {effect!r}.")
    action = _element(where, raw, "Action", "NotAction", _check_action, ignore_case=True)
    resource = _element(where, raw, "Resource", "NotResource", _check_resource, ignore_case=False)
    return Statement(effect, action, resource)


def _element(where: str, raw: Mapping[str, Any], key: str, not_key: str, check: Callable[[str, str], None],
             *, ignore_case: bool) -> _Element:
    if (key in raw) == (not_key in raw):
        raise InvalidInputException(f"{where} needs exactly one of {key} and {not_key}.")
    name = key if key in raw else not_key
    value = raw[name]
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise InvalidInputException(f"{where}: {name} must be a non-empty string or list of strings.")
    for pattern in patterns:
        check(f"{where}: {name}", pattern)
    negated = name == not_key
    return _Element(_glob(patterns, ignore_case), negated, not negated and "*" in patterns)


def _check_action(where: str, pattern: str) -> None:
    if not _ACTION.match(pattern):
        raise InvalidInputException(f"{where} {pattern!r} is not an action: write service:Operation, e.g. "
                                    "personalize:GetRecommendations, with * and ? as wildcards.")


def _check_resource(where: str, pattern: str) -> None:
    if "${" in pattern:
        raise InvalidInputException(f"{where} {pattern!r} uses a policy variable, which Tastemaker does not "
                                    "substitute; write the ARN (wildcards * and ? are allowed).")
    if pattern != "*" and not pattern.startswith("arn:"):
        raise InvalidInputException(f"{where} {pattern!r} is not an ARN: write arn:aws:personalize:REGION:"
                                    "ACCOUNT:TYPE/NAME (wildcards * and ? are allowed), or *.")


# --- what a request acts on -------------------------------------------------------------------------------------

# Kinds whose ARN ends in an id generated at creation: their Create call acts on the resource it is created in.
GENERATED_IDS = {"event_tracker", "solution_version"}


@dataclass(frozen=True)
class ResourcePlan:
    """How to find the resources of one operation's requests, derived once from its input shape."""

    mode: str  # "create" | "list" | "named"
    created_kind: str | None  # create: the kind whose ARN the call creates (None: not derivable)
    name_member: str | None  # create: the member holding the new resource's name
    arn_members: tuple[str, ...]  # members whose values are ARNs, required ones first
    tracking_member: bool  # the input has a trackingId (PutEvents, PutActionInteractions)


def resource_plan(operation: str, input_shape: Shape | None) -> ResourcePlan:
    members = dict(input_shape.members) if input_shape is not None else {}
    required = set(input_shape.required_members) if input_shape is not None else set()
    arns = [m for m in members if m.endswith("Arn")]
    arns.sort(key=lambda m: m not in required)
    tracking = "trackingId" in members
    if operation.startswith("List"):
        return ResourcePlan("list", None, None, (), False)
    if operation.startswith("Create"):
        kind = xform_name(operation[len("Create"):])
        name = next((m for m in ("name", "jobName") if m in members), None)
        derivable = kind in PREFIXES and kind not in GENERATED_IDS and name is not None
        return ResourcePlan("create", kind if derivable else None, name,
                            tuple(m for m in arns if m in required), tracking)
    return ResourcePlan("named", None, None, tuple(arns), tracking)


def request_resources(plan: ResourcePlan, params: Mapping[str, Any], region: str, account: str,
                      tracker_arn: Callable[[str], str | None]) -> list[str]:
    """The ARNs a request acts on (["*"] when it names none)."""
    if plan.mode == "list":
        return ["*"]
    if plan.mode == "create":
        created = _created_arn(plan, params, region, account)
        if created:
            return [created]
        # The new ARN is not known before the call: it acts on the resource it is created in.
        named = _named(plan.arn_members[:1], params)
        return named or ["*"]
    found = _named(plan.arn_members, params)
    tracking_id = params.get("trackingId") if plan.tracking_member else None
    if isinstance(tracking_id, str):
        arn = tracker_arn(tracking_id)
        if arn:
            found.append(arn)
    return found or ["*"]


def _named(members: Iterable[str], params: Mapping[str, Any]) -> list[str]:
    out = []
    for member in members:
        value = params.get(member)
        if isinstance(value, str) and _PERSONALIZE_ARN.match(value):
            out.append(value)
    return out


def _created_arn(plan: ResourcePlan, params: Mapping[str, Any], region: str, account: str) -> str | None:
    name = params.get(plan.name_member) if plan.name_member else None
    if plan.created_kind is None or not isinstance(name, str):
        return None
    if plan.created_kind == "dataset":  # datasets are named after their group and type
        group, kind = params.get("datasetGroupArn"), params.get("datasetType")
        if not isinstance(group, str) or not isinstance(kind, str) or "dataset-group/" not in group:
            return None
        return build_arn("dataset", region, account, group.split("dataset-group/", 1)[1], kind.upper())
    return build_arn(plan.created_kind, region, account, name)
