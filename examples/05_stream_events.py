"""Step 3c: create an event tracker and stream events with PutEvents; recommendations follow in real time."""

import datetime as dt

from common import NAME, events, find, group_arn, personalize, runtime, wait_active

p, rt, ev = personalize(), runtime(), events()
group = group_arn(p)
tracker_arn = p.create_event_tracker(name=f"{NAME}-tracker", datasetGroupArn=group)["eventTrackerArn"]
tracker = wait_active(lambda: p.describe_event_tracker(eventTrackerArn=tracker_arn), "eventTracker")
campaign_arn = find(p, "list_campaigns", "campaigns", f"{NAME}-campaign", "campaignArn")

before = [i["itemId"] for i in rt.get_recommendations(campaignArn=campaign_arn, userId="user2")["itemList"]]
now = dt.datetime.now(dt.UTC)
ev.put_events(trackingId=tracker["trackingId"], userId="user2", sessionId="session-42", eventList=[
    {"eventType": "watch", "itemId": item, "sentAt": now - dt.timedelta(seconds=5 - k), "eventValue": 5.0}
    for k, item in enumerate(["item10", "item11", "item12"])])
# New items and users can be sent too, when the group has Items / Users datasets:
items_arn = find(p, "list_datasets", "datasets", f"{NAME}-items", "datasetArn", datasetGroupArn=group)
if items_arn:
    ev.put_items(datasetArn=items_arn, items=[{
        "itemId": "item-new-1", "properties": '{"genres": "Drama", "creationTimestamp": 1764000000}'}])
after = [i["itemId"] for i in rt.get_recommendations(campaignArn=campaign_arn, userId="user2")["itemList"]]
print("before the events:", before[:10])
print("after the events: ", after[:10])
