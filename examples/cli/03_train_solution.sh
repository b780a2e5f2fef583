#!/usr/bin/env bash
# Step 3a: a solution (recipe + configuration) and a trained version, then its offline metrics.
set -euo pipefail
. "$(dirname "$0")/env.sh"
aws personalize create-solution --name "$NAME-up" --dataset-group-arn "$ARN:dataset-group/$NAME" \
    --recipe-arn arn:aws:personalize:::recipe/aws-user-personalization --no-perform-auto-training --endpoint-url "$EP"
VERSION=$(aws personalize create-solution-version --solution-arn "$ARN:solution/$NAME-up" \
    --query solutionVersionArn --output text --endpoint-url "$EP")
until [ "$(aws personalize describe-solution-version --solution-version-arn "$VERSION" \
      --query solutionVersion.status --output text --endpoint-url "$EP")" = ACTIVE ]; do sleep 2; done
aws personalize get-solution-metrics --solution-version-arn "$VERSION" --endpoint-url "$EP"
