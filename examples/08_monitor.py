"""Step 5: look at what exists: resources of the group, their status, training metrics, tags."""

from common import NAME, group_arn, personalize

p = personalize()
group = group_arn(p)
print("dataset group:", p.describe_dataset_group(datasetGroupArn=group)["datasetGroup"]["status"])
for dataset in p.list_datasets(datasetGroupArn=group)["datasets"]:
    jobs = p.list_dataset_import_jobs(datasetArn=dataset["datasetArn"])["datasetImportJobs"]
    print(f"  dataset {dataset['datasetType']:<13} {dataset['status']}  imports: {[j['status'] for j in jobs]}")
for solution in p.list_solutions(datasetGroupArn=group)["solutions"]:
    for version in p.list_solution_versions(solutionArn=solution["solutionArn"])["solutionVersions"]:
        metrics = p.get_solution_metrics(solutionVersionArn=version["solutionVersionArn"])["metrics"]
        print(f"  solution {solution['name']:<32} {version['status']}  "
              f"NDCG@10 {metrics['normalized_discounted_cumulative_gain_at_10']:.3f}")
    for campaign in p.list_campaigns(solutionArn=solution["solutionArn"])["campaigns"]:
        print(f"  campaign {campaign['name']:<32} {campaign['status']}")
for tracker in p.list_event_trackers(datasetGroupArn=group)["eventTrackers"]:
    print(f"  event tracker {tracker['name']:<27} {tracker['status']}")
for item in p.list_filters(datasetGroupArn=group)["Filters"]:
    print(f"  filter {item['name']:<34} {item['status']}")
p.tag_resource(resourceArn=group, tags=[{"tagKey": "team", "tagValue": "examples"}])
print("tags:", p.list_tags_for_resource(resourceArn=group)["tags"], f"({NAME})")
