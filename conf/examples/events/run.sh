#!/bin/bash
# Runs the README's "Events and feedback" example from start to end on loopback:
# a stand-in for the recipients' mail provider (dnsmasq with their MX record, an
# aiosmtpd mailbox server), the app's webhook receiver (receiver.py), mailgate with
# mailgate.lua; then the steps the README shows (inject a campaign, a bounce and a
# complaint come back), prints what the receiver got, and stops every process it
# started (by PID) and removes its temporary directory, also on errors and Ctrl-C.
# tests/integration/test_events_example.py runs this file as it is.
#
# Needs: build/mailgate, curl, swaks, dnsmasq, python3-aiosmtpd (Debian packages).
# Ports (loopback): SMTP_PORT HTTP_PORT HOOK_PORT MX_PORT DNS_PORT (defaults below).
set -euo pipefail
cd "$(dirname "$0")/../../.."              # the checkout: build/, conf/, plugins/
EXAMPLE=conf/examples/events
MAILGATE=${MAILGATE:-build/mailgate}
PYTHON=${PYTHON:-/usr/bin/python3}         # Debian's python3, which has aiosmtpd
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
SMTP_PORT=${SMTP_PORT:-2525} HTTP_PORT=${HTTP_PORT:-8025} HOOK_PORT=${HOOK_PORT:-8080}
MX_PORT=${MX_PORT:-2526} DNS_PORT=${DNS_PORT:-5353}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailgate-events.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS WHAT COMMAND...: run COMMAND until it succeeds, at most SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    for pid in "${pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: a process it started exited (a port in use?); logs in $WORK" >&2
        KEEP=1
        exit 1
      fi
    done
    if ((SECONDS >= deadline)); then
      echo "run.sh: timed out waiting for $what; logs in $WORK" >&2
      KEEP=1
      exit 1
    fi
    sleep 0.1
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mailbox_has() { [ "$(find "$WORK/mx/new" -type f 2>/dev/null | wc -l)" -ge "$1" ]; }
events_seen() { [ "$(wc -l <"$WORK/events.jsonl")" -ge "$1" ]; }

# The recipients' provider: MX example.test -> 127.0.0.1, a mailbox server on MX_PORT.
"$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --pid-file= \
  --user="$(id -un)" --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
  --local=/test/ --mx-host=example.test,mx.example.test,10 \
  --host-record=mx.example.test,127.0.0.1 2>"$WORK/dnsmasq.log" &
pids+=($!)
"$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$MX_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/mx" \
  2>"$WORK/mx.log" &
pids+=($!)
# The app's webhook receiver: what it prints is what the app sees.
"$PYTHON" "$EXAMPLE/receiver.py" "$HOOK_PORT" >"$WORK/events.jsonl" 2>"$WORK/receiver.log" &
pids+=($!)
# The gateway, with this example's config (ports and spool from here).
HOOK_URL="http://127.0.0.1:$HOOK_PORT/" "$MAILGATE" serve --config "$EXAMPLE/mailgate.lua" \
  --set listen.address="127.0.0.1:$SMTP_PORT" --set http.listen="127.0.0.1:$HTTP_PORT" \
  --set dns.servers.1="127.0.0.1:$DNS_PORT" --set delivery.port="$MX_PORT" \
  --set spool.path="$WORK/spool" --set log.deliveries="$WORK/deliveries.jsonl" \
  2>"$WORK/mailgate.log" &
pids+=($!)
wait_until 10 "dnsmasq" port_open "$DNS_PORT"
wait_until 10 "the mailbox server" port_open "$MX_PORT"
wait_until 10 "receiver.py" port_open "$HOOK_PORT"
wait_until 30 "mailgate" grep -q "listening smtp=" "$WORK/mailgate.log"

# --- steps (the README shows this part) ---
# 1. The app injects a campaign: one template, per-recipient vars.
curl -s -X POST "http://127.0.0.1:$HTTP_PORT/api/v1/inject" -H 'Content-Type: application/json' -d '{
  "from": "news@example.org",
  "subject": "{{first}}, your {{month}} offer",
  "text": "Hello {{first}},\nthis month: {{offer}}.\n",
  "headers": {"X-Campaign": "december"},
  "vars": {"month": "December", "offer": "tea"},
  "recipients": [{"email": "alice@example.test", "vars": {"first": "Alice"}},
                 {"email": "bob@example.test", "vars": {"first": "Bob"}},
                 {"email": "carol@example.test", "vars": {"first": "Carol", "offer": "coffee"}}]
}'
echo
wait_until 30 "the three deliveries" mailbox_has 3

# 2. Bob's provider accepted the message, then found no mailbox: it sends a DSN
#    (RFC 3464) to the return path it got in MAIL FROM, the message's VERP address.
msg=$(grep -l '^X-RcptTo: bob@example.test' "$WORK"/mx/new/*)
verp=$(sed -n 's/^X-MailFrom: //p' "$msg")
swaks --silent 2 --server "127.0.0.1:$SMTP_PORT" --from '<>' --to "$verp" --data - <<DSN
From: MAILER-DAEMON@mx.example.test
To: $verp
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"

--dsn
Content-Type: text/plain

Your message to bob@example.test could not be delivered.

--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test

Final-Recipient: rfc822; bob@example.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <bob@example.test>: no such mailbox

--dsn
Content-Type: text/rfc822-headers

$(sed '/^$/q' "$msg")
--dsn--
DSN

# 3. Carol pressed "this is spam": her provider's feedback loop sends an ARF report
#    (RFC 5965) with the message's headers to the address you registered with it.
msg=$(grep -l '^X-RcptTo: carol@example.test' "$WORK"/mx/new/*)
swaks --silent 2 --server "127.0.0.1:$SMTP_PORT" --from fbl@mx.example.test \
  --to complaints@fbl.example.org --data - <<ARF
From: fbl@mx.example.test
To: complaints@fbl.example.org
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

A user of mx.example.test reported this message as spam.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: carol@example.test

--arf
Content-Type: text/rfc822-headers

$(sed '/^$/q' "$msg")
--arf--
ARF
# --- end of steps ---

wait_until 30 "five events at the receiver" events_seen 5
echo "--- the receiver got:"
cat "$WORK/events.jsonl"
echo "--- the suppression list:"
"$MAILGATE" suppression list --api "http://127.0.0.1:$HTTP_PORT"
