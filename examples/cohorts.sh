#!/usr/bin/env bash
# The README's cohort walkthrough as a script: against a running `klaxon serve` on
# 127.0.0.1:8080, create a tenant, a cohort of customers first seen today that saw a 400, a rule
# that reports who enters and leaves it every 15 minutes, and a few events; then show the
# members, one customer's cohorts and its activity, and the event-type catalogue.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${KLAXON_URL:-http://127.0.0.1:8080}
admin=${KLAXON_ADMIN_TOKEN:-$(cat klaxon-data/admin-token)}
call() { curl -sf -H "Authorization: Bearer $key" "$@"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

tenant=$(curl -sf -X POST "$base/v1/tenants" -H "Authorization: Bearer $admin" -d '{"name": "cohorts example"}')
key=$(printf '%s' "$tenant" | field '["admin_key"]["token"]')

cohort=$(call -X POST "$base/v1/cohorts" -d '{
  "name": "New and failing",
  "criteria": [
    {"kind": "first_seen", "within": {"calendar": "day"}},
    {"kind": "performed", "event_type": "api_call", "within": {"calendar": "day"},
     "filters": [{"field": "event.status", "op": "=", "value": 400}]}
  ]
}' | field '["id"]')
until [ "$(call "$base/v1/cohorts/$cohort" | field '["status"]')" = ready ]; do sleep 0.1; done
call -X POST "$base/v1/rules" -d '{
  "name": "New customers in trouble", "scope": {"type": "all"},
  "condition": {"kind": "cohort", "cohort": "'"$cohort"'", "batch_interval": "15m"}
}' >/dev/null

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
call -X POST "$base/v1/events" -d '{"events": [
  {"id": "e1", "customer_id": "cus_1", "type": "api_call", "timestamp": "'"$now"'", "properties": {"status": 400}},
  {"id": "e2", "customer_id": "cus_2", "type": "api_call", "timestamp": "'"$now"'", "properties": {"status": 200}}
]}'
echo
call "$base/v1/cohorts/$cohort/members"; echo
call "$base/v1/customers/cus_1/cohorts"; echo
call "$base/v1/customers/cus_1"; echo
call "$base/v1/event-types" | field '["items"]'
