"""`tastemaker explain`: why a campaign or recommender recommends what it does, item by item.

It runs GetRecommendations through the registered operation (as the API would, on this data dir's database
and blobs), then asks the deployed model why each item is there (tastemaker.serving.explain): the slot that
placed it (model, promotion, exploration), the user's own events that carried it most, the user's trained
profile, the attributes it shares with those events, and the filter applied. The console's test panel
shows the same beside each item.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    parser.add_argument("arn", help="the campaign or recommender ARN")
    parser.add_argument("--user-id", help="recommendations for this user")
    parser.add_argument("--item-id", help="related items of this item")
    parser.add_argument("--num-results", type=int, default=10, help="how many items (default 10)")
    parser.add_argument("--filter-arn", help="apply this filter, as GetRecommendations would")
    parser.add_argument("--filter-values", help='the filter\'s values as a JSON object, e.g. {"GENRE": "\\"Drama\\""}')
    parser.add_argument("--region", default=None, help="the region of the ARN (default: the server's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    _add_state_flags(parser)


def explained(services: Any, arn: str, *, region: str, user_id: str | None, item_id: str | None,
              num_results: int, filter_arn: str | None, filter_values: dict[str, str] | None) -> dict[str, Any]:
    """GetRecommendations' answer with a reason per item (wire names)."""
    from tastemaker.control.context import RequestContext
    from tastemaker.serving.explain import explain
    from tastemaker.serving.runtime import get_recommendations

    target = {"recommender_arn" if ":recommender/" in arn else "campaign_arn": arn}
    answer = get_recommendations(RequestContext(services, region), **target, user_id=user_id, item_id=item_id,
                                 num_results=num_results, filter_arn=filter_arn, filter_values=filter_values)
    items = [{"itemId": i["itemId"], "promotionName": i.get("promotionName")} for i in answer["itemList"]]
    reasons = explain(services, arn, items, user_id=user_id, item_id=item_id)
    return {"arn": arn, "userId": user_id, "itemId": item_id, "filterArn": filter_arn,
            "items": [{**r.as_dict(), "score": i.get("score")} for r, i in zip(reasons, answer["itemList"],
                                                                             strict=True)]}


def cmd_explain(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services

    if not (args.user_id or args.item_id):
        print("give --user-id (recommendations for a user) or --item-id (related items)", file=sys.stderr)
        return 2
    try:
        values = json.loads(args.filter_values) if args.filter_values else None
    except json.JSONDecodeError as exc:
        print(f"--filter-values must be a JSON object: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    services = build_services(settings, migrate=False)
    report = explained(services, args.arn, region=args.region or settings.default_region, user_id=args.user_id,
                       item_id=args.item_id, num_results=args.num_results, filter_arn=args.filter_arn,
                       filter_values=values)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    if args.filter_arn:
        print(f"filter applied: {args.filter_arn}")
    for rank, item in enumerate(report["items"], start=1):
        print(f"{rank:>3}. {item['itemId']}  slot={item['slot']}  score={item.get('score')}")
        if item["relatedTo"]:
            print(f"       related to {item['relatedTo']['itemId']} (model score {item['relatedTo']['score']:.4f})")
        for event in item["events"]:
            print(f"       carried by your event on {event['itemId']} (+{event['contribution']:.4f})")
        if item["profile"] is not None:
            print(f"       your trained profile: {item['profile']:+.4f}")
        for column, value in item["sharedAttributes"].items():
            print(f"       shares {column}={value} with those events")
    return 0
