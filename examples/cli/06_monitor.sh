#!/usr/bin/env bash
# Step 5: what exists and in which state.
set -euo pipefail
. "$(dirname "$0")/env.sh"
aws personalize list-datasets --dataset-group-arn "$ARN:dataset-group/$NAME" --endpoint-url "$EP"
aws personalize list-solutions --dataset-group-arn "$ARN:dataset-group/$NAME" --endpoint-url "$EP"
aws personalize list-campaigns --solution-arn "$ARN:solution/$NAME-up" --endpoint-url "$EP"
aws personalize list-event-trackers --dataset-group-arn "$ARN:dataset-group/$NAME" --endpoint-url "$EP"
aws personalize list-filters --dataset-group-arn "$ARN:dataset-group/$NAME" --endpoint-url "$EP"
