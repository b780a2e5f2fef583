#!/usr/bin/env bash
# Step 3b + 4: deploy the latest version in a campaign and ask it for recommendations.
set -euo pipefail
. "$(dirname "$0")/env.sh"
VERSION=$(aws personalize describe-solution --solution-arn "$ARN:solution/$NAME-up" \
    --query solution.latestSolutionVersion.solutionVersionArn --output text --endpoint-url "$EP")
aws personalize create-campaign --name "$NAME-campaign" --solution-version-arn "$VERSION" \
    --min-provisioned-tps 1 --endpoint-url "$EP"
until [ "$(aws personalize describe-campaign --campaign-arn "$ARN:campaign/$NAME-campaign" \
      --query campaign.status --output text --endpoint-url "$EP")" = ACTIVE ]; do sleep 1; done
aws personalize-runtime get-recommendations --campaign-arn "$ARN:campaign/$NAME-campaign" \
    --user-id user1 --num-results 5 --endpoint-url "$EP"
