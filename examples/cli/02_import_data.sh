#!/usr/bin/env bash
# Step 2: schema + dataset + import job. DATA is a folder the server may read (its DATA_DIR/imports, an
# --import-root), or an s3:// folder; it holds interactions.csv and interactions.schema.json.
set -euo pipefail
. "$(dirname "$0")/env.sh"
DATA="${1:?usage: 02_import_data.sh /absolute/folder}"
aws personalize create-schema --name "$NAME-interactions" \
    --schema "file://$DATA/interactions.schema.json" --endpoint-url "$EP"
aws personalize create-dataset --name "$NAME-interactions" --dataset-type Interactions \
    --dataset-group-arn "$ARN:dataset-group/$NAME" --schema-arn "$ARN:schema/$NAME-interactions" --endpoint-url "$EP"
JOB="$NAME-import-$(date +%Y%m%d-%H%M%S)"   # job names stay taken after a cleanup: one per run
aws personalize create-dataset-import-job --job-name "$JOB" \
    --dataset-arn "$ARN:dataset/$NAME/INTERACTIONS" \
    --data-source "dataLocation=$DATA/interactions.csv" \
    --role-arn "arn:aws:iam::$ACCOUNT:role/PersonalizeImport" --import-mode FULL --endpoint-url "$EP"
aws personalize describe-dataset-import-job --dataset-import-job-arn "$ARN:dataset-import-job/$JOB" \
    --query datasetImportJob.status --output text --endpoint-url "$EP"
