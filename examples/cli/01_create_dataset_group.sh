#!/usr/bin/env bash
# Step 1: create a dataset group (add --domain VIDEO_ON_DEMAND or ECOMMERCE for a domain group).
set -euo pipefail
. "$(dirname "$0")/env.sh"
aws personalize create-dataset-group --name "$NAME" --endpoint-url "$EP"
aws personalize describe-dataset-group --dataset-group-arn "$ARN:dataset-group/$NAME" \
    --query datasetGroup.status --output text --endpoint-url "$EP"
