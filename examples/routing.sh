#!/usr/bin/env bash
# The README's routing walkthrough as a script: against a running `klaxon serve` on
# 127.0.0.1:8080, create a tenant, two people in two groups, a channel per group, the
# subscriptions of the category matrix, a billing rule with no channel of its own, and a silence;
# then send two events and show where each notification went (or why it did not). Then an
# incident's lifecycle (each update told to the infrastructure subscribers) and a channel with
# quiet hours around the clock holding a warning for its digest.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${KLAXON_URL:-http://127.0.0.1:8080}
admin=${KLAXON_ADMIN_TOKEN:-$(cat klaxon-data/admin-token)}
call() { curl -sf -H "Authorization: Bearer $key" "$@"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

tenant=$(curl -sf -X POST "$base/v1/tenants" -H "Authorization: Bearer $admin" -d '{"name": "routing example"}')
key=$(printf '%s' "$tenant" | field '["admin_key"]["token"]')

call -X POST "$base/v1/recipients" -d '{"name": "Ada", "email": "ada@example.com", "groups": ["Org Admins"]}' >/dev/null
call -X POST "$base/v1/recipients" -d '{"name": "Bo", "email": "bo@example.com", "groups": ["Billing Admins"]}' >/dev/null
org=$(call -X POST "$base/v1/channels" -d '{"name": "org", "kind": "webhook", "url": "https://example.com/org"}' | field '["id"]')
billing=$(call -X POST "$base/v1/channels" -d '{"name": "billing", "kind": "webhook", "url": "https://example.com/billing"}' | field '["id"]')
call -X POST "$base/v1/subscriptions" -d '{"name": "Org Admins", "group": "Org Admins",
  "channels": {"billing": ["'"$org"'"], "infrastructure": ["'"$org"'"], "configuration": ["'"$org"'"]}}' >/dev/null
call -X POST "$base/v1/subscriptions" -d '{"name": "Billing Admins", "group": "Billing Admins",
  "min_severity": "warning", "channels": {"billing": ["'"$billing"'"]}}' >/dev/null

call -X PUT "$base/v1/customers/globex" -d '{"name": "Globex", "fields": {"tier": "Enterprise"}}' >/dev/null
call -X PUT "$base/v1/customers/initech" -d '{"name": "Initech", "fields": {"tier": "Pro"}}' >/dev/null
call -X POST "$base/v1/rules" -d '{"name": "Payment failed", "category": "billing", "severity": "warning",
  "scope": {"type": "each"}, "condition": {"kind": "event_match", "matches": [{"event_type": "payment.failed"}]}}' >/dev/null
in_an_hour=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
call -X POST "$base/v1/silences" -d '{"comment": "Globex is migrating its card", "ends_at": "'"$in_an_hour"'",
  "matchers": [{"field": "customer.id", "op": "=", "value": "globex"}]}' >/dev/null

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
call -X POST "$base/v1/events" -d '{"events": [
  {"id": "p1", "customer_id": "initech", "type": "payment.failed", "timestamp": "'"$now"'"},
  {"id": "p2", "customer_id": "globex", "type": "payment.failed", "timestamp": "'"$now"'"}]}'
echo
call "$base/v1/notifications" | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    print(n["customer_id"], n["status"], n.get("reason") or "to " + ", ".join(n["channels"]))'

incident=$(call -X POST "$base/v1/incidents" -d '{"title": "API latency", "category": "infrastructure",
  "severity": "critical", "components": ["api"], "message": "Looking into it."}' | field '["id"]')
for step in identified monitoring resolved; do
  call -X POST "$base/v1/incidents/$incident/updates" -d '{"status": "'$step'", "message": "now '$step'"}' >/dev/null
done
call "$base/v1/incidents/$incident" | python3 -c '
import json, sys
incident = json.load(sys.stdin)
for update in incident["timeline"]:
    print(incident["id"], update["status"], "told in", update["notification_id"])'

quiet=$(call -X POST "$base/v1/channels" -d '{"name": "quiet", "kind": "webhook", "url": "https://example.com/quiet",
  "quiet_hours": {"timezone": "UTC", "from": "00:00", "to": "00:00"}}' | field '["id"]')
call -X POST "$base/v1/rules" -d '{"name": "Seats low", "severity": "warning", "channels": ["'"$quiet"'"],
  "scope": {"type": "each"}, "condition": {"kind": "event_match", "matches": [{"event_type": "seats.low"}]}}' >/dev/null
call -X POST "$base/v1/events" -d '{"events": [
  {"id": "q1", "customer_id": "initech", "type": "seats.low", "timestamp": "'"$now"'"}]}' >/dev/null
call "$base/v1/notifications?status=held" | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    print(n["id"], n["status"], n["reason"])'
