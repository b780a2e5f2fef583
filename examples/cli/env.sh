# Source this first:  . examples/cli/env.sh
# The AWS CLI (pip install awscli) talks to Tastemaker with --endpoint-url; the key is the server's root key.
export EP="${TASTEMAKER_ENDPOINT:-http://127.0.0.1:8080}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
KEYS="${TASTEMAKER_DATA_DIR:-.tastemaker}/credentials.json"
if [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ -f "$KEYS" ]; then
  AWS_ACCESS_KEY_ID=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['keys'][0]['access_key_id'])" "$KEYS")
  AWS_SECRET_ACCESS_KEY=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['keys'][0]['secret_access_key'])" "$KEYS")
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
fi
export NAME="${EXAMPLE_NAME:-cli-example}"
export ACCOUNT=000000000000   # Tastemaker's default account id (TASTEMAKER_ACCOUNT_ID)
export ARN="arn:aws:personalize:$AWS_DEFAULT_REGION:$ACCOUNT"
