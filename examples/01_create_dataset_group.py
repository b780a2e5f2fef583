"""Step 1 of the manual: create a (custom) dataset group and wait until it is ACTIVE."""

from common import NAME, find, personalize, wait_active

p = personalize()
arn = find(p, "list_dataset_groups", "datasetGroups", NAME, "datasetGroupArn")
if arn is None:
    arn = p.create_dataset_group(name=NAME)["datasetGroupArn"]
group = wait_active(lambda: p.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
print(f"dataset group {group['name']}: {group['status']} ({arn})")
