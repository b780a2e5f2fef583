#!/usr/bin/env bash
# Step 3c/3d: an event tracker + PutEvents, and a filter used at request time.
set -euo pipefail
. "$(dirname "$0")/env.sh"
TRACKING_ID=$(aws personalize create-event-tracker --name "$NAME-tracker" \
    --dataset-group-arn "$ARN:dataset-group/$NAME" --query trackingId --output text --endpoint-url "$EP")
sleep 2
aws personalize-events put-events --tracking-id "$TRACKING_ID" --user-id user1 --session-id s1 \
    --event-list "[{\"eventType\": \"watch\", \"itemId\": \"item10\", \"sentAt\": $(date +%s)}]" --endpoint-url "$EP"
aws personalize create-filter --name "$NAME-unseen" --dataset-group-arn "$ARN:dataset-group/$NAME" \
    --filter-expression 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")' --endpoint-url "$EP"
sleep 2
aws personalize-runtime get-recommendations --campaign-arn "$ARN:campaign/$NAME-campaign" --user-id user1 \
    --filter-arn "$ARN:filter/$NAME-unseen" --endpoint-url "$EP"
