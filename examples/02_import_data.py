"""Step 2: create schemas and datasets, then import CSV files (a local folder the server may read, or s3://).

Usage: python 02_import_data.py [FOLDER]   FOLDER holds interactions.csv (+ items.csv, users.csv) and
an Avro schema beside each (interactions.schema.json ...). Without FOLDER a small sample is generated.
"""

import json
import sys
from pathlib import Path

from common import IMPORT_DIR, NAME, RUN, group_arn, personalize, wait_active

p = personalize()
group = group_arn(p)
if len(sys.argv) > 1:
    folder = Path(sys.argv[1]).resolve()
else:  # sample data written where the server may import from (its DATA_DIR/imports)
    from tastemaker.cli.sample_data import generate

    folder = IMPORT_DIR / NAME
    generate(folder, users=300, items=200, interactions=6000)

for kind in ("Interactions", "Items", "Users"):
    csv_file = folder / f"{kind.lower()}.csv"
    if not csv_file.exists():
        continue
    schema = (folder / f"{kind.lower()}.schema.json").read_text()
    schema_arn = p.create_schema(name=f"{NAME}-{kind.lower()}", schema=json.dumps(json.loads(schema)))["schemaArn"]
    dataset_arn = p.create_dataset(name=f"{NAME}-{kind.lower()}", schemaArn=schema_arn,
                                   datasetGroupArn=group, datasetType=kind)["datasetArn"]
    wait_active(lambda arn=dataset_arn: p.describe_dataset(datasetArn=arn), "dataset")
    job_arn = p.create_dataset_import_job(
        jobName=f"{NAME}-{kind.lower()}-{RUN}", datasetArn=dataset_arn,
        dataSource={"dataLocation": str(csv_file)},  # or "s3://bucket/folder/" with TASTEMAKER_S3_ENDPOINT_URL
        roleArn="arn:aws:iam::000000000000:role/PersonalizeImport",  # accepted and ignored by Tastemaker
        importMode="FULL")["datasetImportJobArn"]
    job = wait_active(lambda arn=job_arn: p.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob")
    print(f"{kind}: imported {csv_file.name} ({job['status']})")
