#!/usr/bin/env bash
# The byte-identical witness: runs one script of commands against two builds of subsave and
# diffs everything they print, answer and send. A refactor that claims to change no behaviour
# shows it with `bash bench/same-output.sh BEFORE_BIN AFTER_BIN` (exit 0: the same; exit 1: the
# differences are printed and kept in the output folder).
#
# Each binary gets a fresh folder, a fixed clock (SUBSAVE_NOW), fixed link keys (so signed links
# match), SQLite and the file mail transport. It runs `subsave demo`, then the command line's
# families with and without --json (and refused inputs: their stdout, stderr and exit code),
# then `subsave run` for the HTTP API and the customer pages, and keeps every .eml file. What
# is allowed to differ between two runs of one binary is masked: the wall-clock times (the
# demo's duration, log timestamps, HTTP Date headers), API keys (random by design) and the
# ports. `subsave run` reads the real clock, so the fixed clock is in the future: nothing the
# demo left is due for the daemon, whose requests here do not depend on today.
#
# Usage: bash bench/same-output.sh BIN_A BIN_B
# SAME_OUTPUT_DIR=D keeps the outputs in D/a and D/b (default: a temporary folder, printed).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bash bench/same-output.sh BIN_A BIN_B" >&2
  exit 2
fi
BIN_A=$(realpath "$1")
BIN_B=$(realpath "$2")
OUT=${SAME_OUTPUT_DIR:-$(mktemp -d /tmp/same-output.XXXXXX)}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
NOW=2027-01-15T12:00:00Z

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# What may differ between two runs of one binary, replaced by placeholders: the run's folder,
# the wall clock (the demo's duration, log timestamps and timings, HTTP Date headers, the
# sub-second part of instants the demo's mailer and payment worker add to the simulated
# clock as they work), API keys (random by design), MIME boundaries (lettre's, random) and
# the ports.
mask() {
  sed -E \
    -e "s|$WORK|<WORK>|g" \
    -e 's/ in [0-9]+\.[0-9] s$/ in <SECONDS> s/' \
    -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/<LOGTIME>/' \
    -e 's/(elapsed_ms|millis)=[0-9]+/\1=<MS>/g' \
    -e 's/(T[0-9]{2}:[0-9]{2}:[0-9]{2})\.[0-9]+(Z|\+00:00)/\1.<FRACTION>\2/g' \
    -e 's/ssk_[A-Za-z0-9_-]{43}/<API_KEY>/g' \
    -e 's/ssk_[A-Za-z0-9_-]+…/<API_KEY_PREFIX>…/g' \
    -e 's/boundary=(\\?")[A-Za-z0-9]{40}/boundary=\1<BOUNDARY>/g' \
    -e 's/--[A-Za-z0-9]{40}/--<BOUNDARY>/g' \
    -e 's/^date: .* GMT$/date: <DATE>/I' \
    -e "s/127\.0\.0\.1:$WEB_PORT/127.0.0.1:<WEB_PORT>/g; s/127\.0\.0\.1:$OPS_PORT/127.0.0.1:<OPS_PORT>/g"
}

# cli NAME ARGS…: one command's stdout, stderr and exit code, in $CLI/NAME.*.
cli() {
  local name=$1
  shift
  local rc=0
  "$BIN" "$@" >"$CLI/$name.out" 2>"$CLI/$name.err" || rc=$?
  echo "$rc" >"$CLI/$name.rc"
}

# http NAME METHOD PATH [CURL ARGS…]: one request's status, headers and body, in $HTTP/NAME.
http() {
  local name=$1 method=$2 path=$3
  shift 3
  curl -sS -X "$method" -D "$HTTP/$name.head" -o "$HTTP/$name.body" \
    -H 'X-Request-Id: same-output' "$@" "http://127.0.0.1:$WEB_PORT$path"
  tr -d '\r' <"$HTTP/$name.head" >"$HTTP/$name.head.tmp" && mv "$HTTP/$name.head.tmp" "$HTTP/$name.head"
}

witness() {
  BIN=$1
  # One folder for both binaries (emptied in between), so that paths they print, and the lines
  # an email wraps them on, are the same.
  local dest=$2 work=$OUT/work
  rm -rf "$work"
  mkdir -p "$work"
  WORK=$work
  CLI=$dest/cli HTTP=$dest/http
  mkdir -p "$CLI" "$HTTP" "$dest/mail"
  WEB_PORT=$(free_port) OPS_PORT=$(free_port)
  cd "$work"
  export SUBSAVE_NOW=$NOW
  export SUBSAVE_WEB__LINK_KEYS='w1:same-output-witness-link-key-0123456789'
  export SUBSAVE_WEB__PUBLIC_URL=https://shop.test
  export SUBSAVE_MAIL__TRANSPORT=file SUBSAVE_MAIL__FILE_DIR=$work/subsave-demo/mail
  export SUBSAVE_DATABASE__URL="sqlite://$work/subsave-demo/subsave.db"
  export SUBSAVE_HTTP__LISTEN=127.0.0.1:$OPS_PORT SUBSAVE_WEB__LISTEN=127.0.0.1:$WEB_PORT
  # One worker of each kind, so that ids (events, messages) are handed out in one order; the
  # leases grow to fit a batch handled one at a time.
  export SUBSAVE_ENGINE__WORKERS=1 SUBSAVE_PAYMENTS__CONCURRENCY=1 SUBSAVE_PAYMENTS__LEASE_SECS=3600
  export SUBSAVE_MAIL__DELIVERY__CONCURRENCY=1 SUBSAVE_MAIL__DELIVERY__LEASE_SECS=3600
  # The demo's payments are the simulated provider's: refunds and collections go through it.
  export SUBSAVE_PAYMENTS__PROVIDER=simulated
  # The daemon would purge what the real clock says is old; keep the outbox as the demo left it.
  export SUBSAVE_OUTBOX__RETAIN_DAYS=0
  unset SUBSAVE_CONFIG SUBSAVE_ADMIN__LISTEN RUST_LOG NO_COLOR

  cli demo demo
  # The rest reads the demo's database.
  local order sub cust page
  order=$("$BIN" orders list --limit 1 --json | jq -r '.[0].order_number')
  sub=$("$BIN" subs list --status active --limit 1 --json | jq -r '.[0].id')
  cust=$("$BIN" subs show "$sub" --json | jq -r '.subscription.customer_id')

  # Catalog and configuration.
  cli check-config check-config
  cli check-config-json check-config --json
  cli plans plans
  cli plans-json plans --json
  cli quote quote --plan 3-pack --region US-CA
  cli quote-json quote --plan 6-pack --quantity 2 --orders-so-far 6 --coupon-percent 10 --region DE --json
  cli quote-country quote --plan 1-pack --country DE
  cli schedule schedule --anchor 2026-01-31T09:00 --tz Europe/Berlin --every "1 month" --count 12
  cli schedule-json schedule --anchor 2026-03-29T02:30 --tz Europe/Berlin --every "1 week" --count 4 --json
  # Customers.
  cli customers-list customers list
  cli customers-list-json customers list --limit 5 --json
  cli customers-show customers show "$cust"
  cli customers-show-json customers show "$cust" --json
  cli customers-add customers add --email witness@example.com --name "Wit Ness" --tz Europe/Berlin --region DE --locale de-DE
  cli customers-add-json customers add --email witness2@example.com --name "Wit Two" --tz America/New_York --region US-NY --json
  cli addresses-add customers addresses add witness@example.com --name "Wit Ness" --line1 "Unter den Linden 1" --city Berlin --postal-code 10117 --country DE --default
  cli addresses-list customers addresses list witness@example.com
  cli addresses-list-json customers addresses list witness@example.com --json
  cli export-data customers export-data "$cust"
  # Subscriptions.
  cli subs-list subs list --limit 20
  cli subs-list-json subs list --limit 20 --json
  cli subs-show subs show "$sub"
  cli subs-show-json subs show "$sub" --json
  cli subs-create subs create --customer witness@example.com --plan 3-pack
  cli subs-create-json subs create --customer witness2@example.com --plan 6-pack --every "6 months" --json
  local mine
  mine=$("$BIN" subs list --customer witness@example.com --json | jq -r '.[0].id')
  cli subs-skip subs skip "$mine"
  cli subs-pause subs pause "$mine"
  cli subs-resume subs resume "$mine"
  cli subs-change subs change "$mine" --plan 6-pack --quantity 2
  cli subs-change-storefront subs change "$mine" --external-id shop-7 --metadata note=witness
  cli customers-add-storefront customers add --email storefront@example.com --name "Store Front" --tz Europe/Berlin --external-id cust-7 --metadata tier=gold
  cli subs-reschedule subs reschedule "$mine" --to 2027-02-20
  cli subs-renew-now subs renew-now "$mine"
  cli subs-cancel subs cancel "$mine" --reason too_much
  cli subs-restart subs restart "$mine"
  # Coupons.
  cli coupons-create coupons create WITNESS10 --percent 10 --duration forever
  cli coupons-create-json coupons create WITNESS5 --amount 5.00 --duration "repeating 3" --json
  cli coupons-list coupons list
  cli coupons-list-json coupons list --json
  cli coupons-disable coupons disable WITNESS5
  # Orders, sweeps and payments.
  cli orders-list orders list --limit 20
  cli orders-list-json orders list --limit 20 --json
  cli orders-show orders show "$order"
  cli orders-show-json orders show "$order" --json
  cli orders-export orders export --from 2026-07-01 --to 2027-01-16
  cli orders-export-jsonl orders export --from 2026-07-01 --to 2027-01-16 --format jsonl --credit-notes
  cli orders-unfulfilled orders export --unfulfilled
  cli orders-refund orders refund "$order" --amount 1.00 --reason witness
  cli tick-dry tick --dry-run
  cli tick-dry-json tick --dry-run --json
  cli tick tick
  cli payments-list payments list --limit 20
  cli payments-list-json payments list --limit 20 --json
  cli payments-collect payments collect
  # The outbox.
  cli outbox-list outbox list --limit 30
  cli outbox-list-json outbox list --limit 30 --json
  cli outbox-show outbox show 1
  cli outbox-show-json outbox show 2 --json
  cli outbox-deliver outbox deliver
  cli outbox-retry outbox retry --failed
  cli mail-test mail test --to witness@example.com
  # Reports.
  cli revenue report revenue --from 2026-07-01 --to 2027-01-16
  cli revenue-plan report revenue --from 2026-07-01 --to 2027-01-16 --by plan --format csv
  cli revenue-json report revenue --from 2026-07-01 --to 2027-01-16 --by region --json
  cli journal report journal --from 2026-07-01 --to 2027-01-16 --format csv
  cli report-payments report payments --from 2026-12-01 --to 2027-01-16
  cli report-payments-json report payments --from 2026-12-01 --to 2027-01-16 --json
  cli metrics report metrics --from 2026-07-01 --to 2027-01-16
  cli metrics-csv report metrics --from 2026-07-01 --to 2027-01-16 --format csv
  cli metrics-json report metrics --from 2026-07-01 --to 2027-01-16 --json
  cli upcoming report upcoming
  cli upcoming-json report upcoming --days 60 --json
  cli fulfillment report fulfillment
  cli fulfillment-json report fulfillment --days 1 --json
  cli audit audit
  cli audit-json audit --json
  cli api-keys-list api-keys list
  # Refused inputs: the message on stderr and the exit code.
  cli err-no-customer customers show nobody@example.com
  cli err-no-sub subs skip 999999
  cli err-no-plan quote --plan 99-pack
  cli err-no-reason subs cancel "$sub"
  cli err-bad-now --now yesterday plans
  cli err-skip-cancelled subs skip "$mine"
  cli err-double-erase customers erase witness2@example.com
  cli err-coupon-both coupons create BOTH --percent 10 --amount 5
  cli err-refund-too-much orders refund "$order" --amount 100000 --reason witness
  cli err-bad-interval subs change "$sub" --every "3 fortnights"
  cli err-no-order orders show BB-9999999-999

  # The daemon: the HTTP API and the customer pages, over the same database.
  local key
  key=$("$BIN" api-keys create --name witness --scope admin --json | jq -r '.key')
  page=$(grep -o 'https://shop.test/s/[^ ]*' "$CLI/demo.out" | head -n 1 | sed 's|https://shop.test||')
  (unset SUBSAVE_NOW; exec "$BIN" run >"$dest/run.out" 2>"$dest/run.err") &
  local daemon=$! tries=0
  until curl -sf "http://127.0.0.1:$OPS_PORT/readyz" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
      echo "subsave run did not become ready" >&2
      kill "$daemon"
      exit 1
    fi
    sleep 0.2
  done
  local auth=(-H "Authorization: Bearer $key")
  http plans GET /v1/plans "${auth[@]}"
  http quote POST /v1/quotes "${auth[@]}" -H 'Idempotency-Key: same-output-quote' -H 'Content-Type: application/json' -d '{"plan":"3-pack","country":"DE"}'
  http customers GET '/v1/customers?limit=5' "${auth[@]}"
  http customer GET "/v1/customers/$cust" "${auth[@]}"
  http addresses GET "/v1/customers/$cust/addresses" "${auth[@]}"
  http subscriptions GET '/v1/subscriptions?limit=5' "${auth[@]}"
  http subscription GET "/v1/subscriptions/$sub" "${auth[@]}"
  http events GET "/v1/subscriptions/$sub/events" "${auth[@]}"
  http orders GET '/v1/orders?limit=5' "${auth[@]}"
  http order GET "/v1/orders/$order" "${auth[@]}"
  http order-payment GET "/v1/orders/$order/payment" "${auth[@]}"
  http payments GET '/v1/payments?limit=5' "${auth[@]}"
  http coupons GET /v1/coupons "${auth[@]}"
  http outbox GET '/v1/outbox?limit=5' "${auth[@]}"
  http message GET /v1/outbox/1 "${auth[@]}"
  http export GET "/v1/customers/$cust/export" "${auth[@]}"
  http err-no-key GET /v1/plans
  http err-bad-key GET /v1/plans -H 'Authorization: Bearer ssk_nope'
  http err-unknown GET /v1/nothing "${auth[@]}"
  http err-no-sub GET /v1/subscriptions/999999 "${auth[@]}"
  http err-bad-param GET '/v1/orders?colour=blue' "${auth[@]}"
  http err-no-idempotency POST "/v1/subscriptions/$sub/skip" "${auth[@]}"
  http err-bad-json POST /v1/quotes "${auth[@]}" -H 'Content-Type: application/json' -d '{"plan":'
  http openapi GET /v1/openapi.json
  http page GET "$page"
  http page-de GET "$page" -H 'Accept-Language: de-DE'
  http page-bad-token GET /s/w1.1.9999999999.AAAA
  http request-form GET /s
  http stylesheet GET /assets/site.css
  kill -TERM "$daemon"
  wait "$daemon" || true

  # The emails, by file name.
  cp -r "$work/subsave-demo/mail/." "$dest/mail/"
  # Mask what may differ between two runs of one binary.
  find "$dest" -type f -print0 | while IFS= read -r -d '' f; do
    mask <"$f" >"$f.masked" && mv "$f.masked" "$f"
  done
  # The daemon's clock is the real one: an export says when it was made (and so its length
  # varies with the digits of the instant).
  sed -E -i 's/"exported_at":"[^"]*"/"exported_at":"<NOW>"/' "$HTTP"/*.body
  sed -E -i 's/^content-length: .*/content-length: <LENGTH>/I' "$HTTP"/export.head
  cd "$OUT"
  rm -rf "$work"
}

witness "$BIN_A" "$OUT/a"
witness "$BIN_B" "$OUT/b"
# What ran, so an empty diff of two empty folders cannot pass.
echo "$(find "$OUT/a/cli" -name '*.out' | wc -l) commands, $(find "$OUT/a/http" -name '*.head' | wc -l) requests, $(find "$OUT/a/mail" -type f | wc -l) emails; outputs in $OUT/a and $OUT/b"
if diff -r "$OUT/a" "$OUT/b"; then
  echo "same output"
else
  echo "DIFFERENT output (above; kept in $OUT)" >&2
  exit 1
fi
