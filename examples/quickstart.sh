#!/usr/bin/env bash
# The README's walkthrough as a script: against a running `klaxon serve` on 127.0.0.1:8080,
# create a tenant, build and upload the week-over-week condition, and invoke it.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${KLAXON_URL:-http://127.0.0.1:8080}
admin=${KLAXON_ADMIN_TOKEN:-$(cat klaxon-data/admin-token)}

tenant=$(curl -sf -X POST "$base/v1/tenants" -H "Authorization: Bearer $admin" -d '{"name": "quickstart"}')
key=$(printf '%s' "$tenant" | python3 -c 'import json, sys; print(json.load(sys.stdin)["admin_key"]["token"])')

component=$(cargo run -q --release -p klaxon -- plugins build plugins/week-over-week-drop)
curl -sf -X POST "$base/v1/plugins?name=usage-drop&kind=condition" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/wasm" --data-binary "@$component" >/dev/null

curl -s -X POST "$base/v1/plugins/usage-drop/invoke" -H "Authorization: Bearer $key" -d '{
  "rule": {"id": "rule_1", "name": "Usage down 20% week over week"},
  "customer": {"id": "cus_42"},
  "value": {"current": 750, "previous": 1000},
  "config": {"drop_percent": 20}
}'
echo
