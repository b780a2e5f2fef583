#!/usr/bin/env bash
# Step 6 by hand, in dependency order (or simply: tastemaker cleanup --dataset-group "$ARN:dataset-group/$NAME").
# Deletes are asynchronous: each describe-* must answer ResourceNotFoundException before the next stage.
set -euo pipefail
. "$(dirname "$0")/env.sh"
gone() { until ! aws personalize "$@" --endpoint-url "$EP" >/dev/null 2>&1; do sleep 1; done; }
aws personalize delete-campaign --campaign-arn "$ARN:campaign/$NAME-campaign" --endpoint-url "$EP"
gone describe-campaign --campaign-arn "$ARN:campaign/$NAME-campaign"
aws personalize delete-filter --filter-arn "$ARN:filter/$NAME-unseen" --endpoint-url "$EP"
TRACKER=$(aws personalize list-event-trackers --dataset-group-arn "$ARN:dataset-group/$NAME" \
    --query 'eventTrackers[0].eventTrackerArn' --output text --endpoint-url "$EP")
aws personalize delete-event-tracker --event-tracker-arn "$TRACKER" --endpoint-url "$EP"
gone describe-event-tracker --event-tracker-arn "$TRACKER"
aws personalize delete-solution --solution-arn "$ARN:solution/$NAME-up" --endpoint-url "$EP"
gone describe-solution --solution-arn "$ARN:solution/$NAME-up"
aws personalize delete-dataset --dataset-arn "$ARN:dataset/$NAME/INTERACTIONS" --endpoint-url "$EP"
gone describe-dataset --dataset-arn "$ARN:dataset/$NAME/INTERACTIONS"
aws personalize delete-dataset-group --dataset-group-arn "$ARN:dataset-group/$NAME" --endpoint-url "$EP"
gone describe-dataset-group --dataset-group-arn "$ARN:dataset-group/$NAME"
aws personalize delete-schema --schema-arn "$ARN:schema/$NAME-interactions" --endpoint-url "$EP"
