#!/usr/bin/env bash
# The demo behind `make demo`: the seed assignment (honour-related violence,
# seven points) driven through the CLI on the embedded SQLite database, from the
# council's decision to the state the report of June 2023 describes.
set -euo pipefail
cd "$(dirname "$0")/.."
council=".venv/bin/council"
export COUNCIL_VAR_DIR=var/demo
# Owners can answer their e-mails (docs/replies.md): replies are signed with this key.
export COUNCIL_REPLY_SECRET=demo-only-secret-not-for-production-use
rm -rf var/demo
say() { printf '\n\033[1m$ council %s\033[0m\n' "$*"; "$council" "$@"; }

say validate
say db upgrade

# A worker (with the scheduler) on the embedded broker: council starts its own
# Redis on a unix socket under var/demo/redis/. Prompts go to var/demo/mail/.
"$council" worker --pool solo --with-beat --loglevel WARNING > var/demo/worker.log 2>&1 &
worker_pid=$!
trap 'kill $worker_pid 2>/dev/null; wait $worker_pid 2>/dev/null; "$council" broker stop >/dev/null' EXIT
for _ in $(seq 1 100); do "$council" broker status | grep -q "running (" && break; sleep 0.2; done
say broker status
export COUNCIL_ACTOR=sara.nilsson           # the coordinator acts unless --as says otherwise
A=kf-2022-hedersvald
say start $A --now 2022-12-01T09:00

# Point 1: measures analysed, drafted and presented to the council in May 2023.
say complete $A/1/analyse --as anders.berg --now 2022-12-20T10:00
say complete $A/1/draft --as anders.berg --now 2023-02-10T10:00 \
    --note "Förslag: samordning inom Effektiv samordning trygghet (EST)."
say complete $A/1/present --as erik.sjoberg --now 2023-05-22T14:00 \
    --note "Åtgärderna presenterades i fullmäktige i maj 2023."

# Point 2: the training plan, adopted.
say complete $A/2/needs --as eva.dahl --now 2023-01-20T09:00
say complete $A/2/offer --as sara.nilsson --now 2023-04-14T09:00 \
    --note "Chefsstöd om våld i nära relationer och webbutbildningar finns."
say complete $A/2/adopt --as eva.dahl --now 2023-05-05T09:00 \
    --note "Planen fastställd; kampanjen En vecka fri från våld uppmärksammas årligen."

# Points 3-5: under way.
say start $A --now 2023-02-01T08:00
say complete $A/3/content --as maria.lind --now 2023-03-01T09:00
say begin $A/3/produce --as lena.strand --now 2023-03-06T09:00
say note $A/3 "Arbete pågår med broschyrer och affischer riktade mot barn och unga." \
    --as lena.strand --now 2023-05-30T09:00
# Amir answers his prompt by e-mail instead: his reply lands in var/demo/inbox/.
.venv/bin/python -m scripts.demo_reply var/demo/mail var/demo/inbox amir.hassan@kommun.example \
    "STARTED
NOTE The reporting routes of all five schools are being mapped."
say inbox --maildir var/demo/inbox --now 2023-02-15T09:00
say note $A/4 "Kartläggning och utvärdering av rapporteringsvägar pågår." \
    --as amir.hassan --now 2023-05-30T09:00
say complete $A/5/identify --as erik.sjoberg --now 2023-02-20T09:00
say begin $A/5/update --as erik.sjoberg --now 2023-03-01T09:00

# Point 7, the report back itself, starts on its planned date.
say start $A --now 2023-04-17T08:00
say complete $A/7/collect --now 2023-05-02T16:00

say status $A --now 2023-06-12
say show $A/3 --now 2023-06-12

# The deadline sweep (beat runs it every 15 minutes): overdue notices to owners and one
# escalation digest per manager.
say check-deadlines --now 2023-06-12T08:00

# Wait for the worker to mail every prompt, then show what went out.
for _ in $(seq 1 150); do
  "$council" effects | grep -qE " (pending|sending) " || break
  sleep 0.2
done
say effects
mails=$(ls var/demo/mail/new | wc -l)
printf '\n%s e-mails went out (task prompts, the report, overdue notices, digests); they are in var/demo/mail/new/ (one file each).\n' "$mails"
printf 'The demo database is var/demo/council.db; try:  COUNCIL_VAR_DIR=var/demo .venv/bin/council events --point %s/1\n' "$A"
