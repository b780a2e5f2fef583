"""Domain groups: a VIDEO_ON_DEMAND dataset group with a "Top picks for you" recommender (no solution/campaign)."""

import json

from common import IMPORT_DIR, NAME, RECIPE, RUN, personalize, runtime, wait_active

from tastemaker.cli.sample_data import generate

p, rt = personalize(), runtime()
name = f"{NAME}-vod"
data = generate(IMPORT_DIR / name, domain="VIDEO_ON_DEMAND", users=300, items=200, interactions=6000)

group = p.create_dataset_group(name=name, domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
wait_active(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
for kind in ("Interactions", "Items"):
    schema_arn = p.create_schema(name=f"{name}-{kind.lower()}", schema=json.dumps(data.schemas[kind]),
                                 domain="VIDEO_ON_DEMAND")["schemaArn"]
    dataset_arn = p.create_dataset(name=f"{name}-{kind.lower()}", schemaArn=schema_arn, datasetGroupArn=group,
                                   datasetType=kind)["datasetArn"]
    wait_active(lambda arn=dataset_arn: p.describe_dataset(datasetArn=arn), "dataset")
    job = p.create_dataset_import_job(jobName=f"{name}-{kind.lower()}-{RUN}", datasetArn=dataset_arn,
                                      dataSource={"dataLocation": str(data.paths[kind])})["datasetImportJobArn"]
    wait_active(lambda arn=job: p.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob")

recommender_arn = p.create_recommender(name=f"{name}-top-picks", datasetGroupArn=group,
                                       recipeArn=RECIPE + "aws-vod-top-picks")["recommenderArn"]
recommender = wait_active(lambda: p.describe_recommender(recommenderArn=recommender_arn), "recommender")
items = rt.get_recommendations(recommenderArn=recommender_arn, userId="user1", numResults=5)["itemList"]
print("top picks for user1:", [i["itemId"] for i in items])
print("model metrics:", {k: round(v, 3) for k, v in (recommender.get("modelMetrics") or {}).items()
                         if k.endswith("_at_10")})
