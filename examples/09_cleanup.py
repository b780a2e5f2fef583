"""Step 6: delete everything the examples created, by hand, in dependency order (what `tastemaker cleanup` does).

Order: campaigns and recommenders, then filters and the event tracker, then solutions, datasets, the dataset
group, and last the schemas. Every delete is asynchronous: wait until Describe says ResourceNotFoundException.
"""

from common import NAME, find, personalize, wait_gone

p = personalize()
for group_name in (NAME, f"{NAME}-vod"):
    group = find(p, "list_dataset_groups", "datasetGroups", group_name, "datasetGroupArn")
    if group is None:
        continue
    solutions = p.list_solutions(datasetGroupArn=group)["solutions"]
    for solution in solutions:
        for campaign in p.list_campaigns(solutionArn=solution["solutionArn"])["campaigns"]:
            p.delete_campaign(campaignArn=campaign["campaignArn"])
            wait_gone(lambda c=campaign: p.describe_campaign(campaignArn=c["campaignArn"]))
    for recommender in p.list_recommenders(datasetGroupArn=group)["recommenders"]:
        p.delete_recommender(recommenderArn=recommender["recommenderArn"])
        wait_gone(lambda r=recommender: p.describe_recommender(recommenderArn=r["recommenderArn"]))
    for item in p.list_filters(datasetGroupArn=group)["Filters"]:
        p.delete_filter(filterArn=item["filterArn"])
        wait_gone(lambda f=item: p.describe_filter(filterArn=f["filterArn"]))
    for tracker in p.list_event_trackers(datasetGroupArn=group)["eventTrackers"]:
        p.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
        wait_gone(lambda t=tracker: p.describe_event_tracker(eventTrackerArn=t["eventTrackerArn"]))
    for solution in solutions:
        p.delete_solution(solutionArn=solution["solutionArn"])
        wait_gone(lambda s=solution: p.describe_solution(solutionArn=s["solutionArn"]))
    schemas = []
    for dataset in p.list_datasets(datasetGroupArn=group)["datasets"]:
        schemas.append(p.describe_dataset(datasetArn=dataset["datasetArn"])["dataset"]["schemaArn"])
        p.delete_dataset(datasetArn=dataset["datasetArn"])
        wait_gone(lambda d=dataset: p.describe_dataset(datasetArn=d["datasetArn"]))
    p.delete_dataset_group(datasetGroupArn=group)
    wait_gone(lambda arn=group: p.describe_dataset_group(datasetGroupArn=arn))
    for schema in schemas:
        p.delete_schema(schemaArn=schema)  # schemas are deleted at once
    print(f"deleted dataset group {group_name} and everything in it")
