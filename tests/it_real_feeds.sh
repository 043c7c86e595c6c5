#!/bin/sh
# tests/it_real_feeds.sh - four agencies' GTFS-Fares v2 feeds, as published
# (tests/fares/real/*/README.md says where each comes from): each loads with
# `tapfare check` unchanged, and journeys priced by `tapfare quote` cost what
# the feed's own rules say. Every expected fare below was worked out by hand
# from the feed's files (the comment above each says from which rows) and
# written here before the test first ran.
set -u
BUILD=${BUILD:-build}
TAPFARE=$BUILD/bin/tapfare
R=tests/fares/real
fails=0 n=0

for feed in mbta trimet zakroczym transcollines; do
	if ! "$TAPFARE" check "$R/$feed" >/dev/null; then
		echo "FAIL: $feed does not load as published"
		fails=$((fails + 1))
	fi
done

# q FEED "WANT" [quote options] -- TAP...: WANT must be a substring of the quote's output.
q() {
	feed=$1 want=$2
	shift 2
	n=$((n + 1))
	out=$("$TAPFARE" -f "$R/$feed" quote "$@" 2>&1)
	case $out in
	*"$want"*) echo "ok   $feed: $want" ;;
	*) echo "FAIL $feed: want \"$want\" for: $*"; echo "$out" | sed 's/^/     /'; fails=$((fails + 1)) ;;
	esac
}

# --- MBTA (USD; no rule_priority: GTFS's field-by-field filtering; transfer_only; media cash/charlieticket/...)
M="--date 20240710"
# local bus 1 from a stop in no area: leg_local_bus_cash,local_bus,,, prod_local_bus cash 1.70
q mbta "fare=1.70 USD product=prod_local_bus" $M --media cash 08:00:00,board,1,1
# the same bus on a CharlieTicket: leg_local_bus_quick_subway,local_bus,,, prod_rapid_transit_quick_subway 2.40
q mbta "fare=2.40 USD product=prod_rapid_transit_quick_subway" $M --media charlieticket 08:00:00,board,1,1
# on a credit/debit card no bus product is sold: unrated, not free
q mbta "UNRATED" $M --media credit_debit 08:00:00,board,1,1
# subway at Harvard (no area) on a CharlieTicket in timeframe_regular: leg_rapid_transit_quick_subway 2.40
q mbta "total=2.40 USD legs=1 unrated=0" $M --media charlieticket 08:00:00,entry,Red,place-harsq
# subway then local bus 30 min later: leg_rapid_transit_quick_subway -> leg_local_bus_quick_subway, 7200 s
# departure to departure, type 0, no product: the bus is free
q mbta "total=2.40 USD legs=2 unrated=0" $M --media charlieticket 08:00:00,entry,Red,place-harsq 08:30:00,board,1,1
# the bus 7201 s after the subway: past the limit, two fares
q mbta "total=4.80 USD legs=2 unrated=0" $M --media charlieticket 08:00:00,entry,Red,place-harsq 10:00:01,board,1,1
# subway twice, 4 h apart: leg_rapid_transit_quick_subway -> itself, transfer_count -1, no duration limit: free
q mbta "total=2.40 USD legs=2 unrated=0" $M --media charlieticket 08:00:00,entry,Red,place-harsq 12:00:00,entry,Red,place-harsq
# cash bus then cash bus: no transfer rule from leg_local_bus_cash: 1.70 + 1.70
q mbta "total=3.40 USD legs=2 unrated=0" $M --media cash 08:00:00,board,1,1 08:20:00,board,1,1
# cash at Harvard's gates: only transfer_only rules (leg_rapid_transit_cash / _free) match a subway leg from
# there, and it is a first leg: unrated (it was priced free by prod_free_fare before transfer_only was read)
q mbta "UNRATED why=\"only transfer_only rules match" $M --media cash 08:00:00,entry,Red,place-harsq
# the Hingham ferry: leg_ferry_f1_cash,ferry_f1 prod_ferry_f1 9.75 on cash; not sold on a CharlieTicket
q mbta "fare=9.75 USD product=prod_ferry_f1" $M --media cash 08:00:00,board,Boat-F1,Boat-Hingham
q mbta "UNRATED" $M --media charlieticket 08:00:00,board,Boat-F1,Boat-Hingham

# --- TriMet (USD; categories ADULT (default), HONORED_CITIZEN, YOUTH; media 0 cash .. 4 virtual HOP)
T="--date 20241210"
# bus 1: TRIMET_ADULT_SINGLE_RIDE 2.80 (the HC and YOUTH products have no ADULT row: not sold to an adult)
q trimet "fare=2.80 USD product=TRIMET_ADULT_SINGLE_RIDE" $T --media 2 08:00:00,board,1,2
# honoured citizen: TRIMET_HC_SINGLE_RIDE 1.40 (cheaper than the adult fare the category may also buy)
q trimet "fare=1.40 USD product=TRIMET_HC_SINGLE_RIDE" $T --media 2 --category HONORED_CITIZEN 08:00:00,board,1,2
# youth on open payment (media 3): TRIMET_YOUTH_SINGLE_RIDE 1.40
q trimet "fare=1.40 USD product=TRIMET_YOUTH_SINGLE_RIDE" $T --media 3 --category YOUTH 08:00:00,board,1,2
# bus then MAX 60 min later: TRIMET -> TRIMET, 9000 s departure to departure, type 0, TRIMET_FREE_ADULT_TRANSFER 0.00
q trimet "total=2.80 USD legs=2 unrated=0" $T --media 2 08:00:00,board,1,2 09:00:00,board,100,3
# exactly 9000 s: within (<=)
q trimet "total=2.80 USD legs=2 unrated=0" $T --media 2 08:00:00,board,1,2 10:30:00,board,100,3
# 9060 s: past the limit, two fares
q trimet "total=5.60 USD legs=2 unrated=0" $T --media 2 08:00:00,board,1,2 10:31:00,board,100,3
# streetcar: the PSC leg rules offer STREETCAR_ADULT_SINGLE_RIDE 2.00 and the transfer upgrade
# STREETCAR_TRIMET_ADULT_TRANSFER 0.80 (a fare_transfer_rules product): the leg alone costs the full fare
q trimet "fare=2.00 USD product=STREETCAR_ADULT_SINGLE_RIDE" $T --media 2 08:00:00,board,193,2
# streetcar then bus: PSC -> TRIMET type 0 with STREETCAR_TRIMET_ADULT_TRANSFER: the bus costs 0.80
q trimet "total=2.80 USD legs=2 unrated=0" $T --media 2 08:00:00,board,193,2 08:30:00,board,1,3
# bus then streetcar: TRIMET -> PSC, TRIMET_FREE_ADULT_TRANSFER 0.00: free
q trimet "total=2.80 USD legs=2 unrated=0" $T --media 2 08:00:00,board,1,2 08:30:00,board,193,3
# honoured citizen, streetcar 1.00 then bus: STREETCAR_TRIMET_HC_TRANSFER 0.40 (the adult one, 0.80, is dearer)
q trimet "total=1.40 USD legs=2 unrated=0" $T --media 2 --category HONORED_CITIZEN 08:00:00,board,193,2 08:30:00,board,1,3
# the aerial tram: AERIAL_TRAM_ROUND_TRIP 8.50 on a ticket (media 1) only; a bus on a ticket: no product: unrated
q trimet "fare=8.50 USD product=AERIAL_TRAM_ROUND_TRIP" $T --media 1 08:00:00,board,208,2
q trimet "UNRATED" $T --media 1 08:00:00,board,1,2

# --- Zakroczym (PLN; zone fares on buses: the exit gives the arrival area; media 0 on board, 1 monthly)
Z="--date 20251201 --media 0"
# stop 100 (zone 1) to 120 (zone 3): flr_13 single_ride_zones13_normal 5.00
q zakroczym "fare=5.00 PLN product=single_ride_zones13_normal" $Z 08:00:00,board,Z1,100 08:20:00,exit,Z1,120
# 100 to 117 (zone 2): flr_12 4.00
q zakroczym "fare=4.00 PLN product=single_ride_zones12_normal" $Z 08:00:00,board,Z1,100 08:10:00,exit,Z1,117
# within zone 1: flr_1 single_ride_zone1_normal 0.00 (free by the municipality's rule, priced, not unrated)
q zakroczym "fare=0.00 PLN product=single_ride_zone1_normal" $Z 08:00:00,board,Z1,100 08:10:00,exit,Z1,101
# 117 (zone 2) to 120 (zone 3): flr_23 4.00
q zakroczym "fare=4.00 PLN product=single_ride_zones23_normal" $Z 08:00:00,board,Z1,117 08:10:00,exit,Z1,120
# the reverse 120 to 100: flr_31 5.00
q zakroczym "fare=5.00 PLN product=single_ride_zones13_normal" $Z 08:00:00,board,Z1,120 08:20:00,exit,Z1,100
# a text stop id with a dash: 113-2 is in zone 1
q zakroczym "fare=5.00 PLN" $Z 08:00:00,board,Z1,113-2 08:20:00,exit,Z1,120
# a boarding with no exit: every rule names a to_area: unrated
q zakroczym "UNRATED" $Z 08:00:00,board,Z1,100
# a senior (category 3): the single rides have only the default category's row: the full 5.00
q zakroczym "fare=5.00 PLN" $Z --category 3 08:00:00,board,Z1,100 08:20:00,exit,Z1,120
# no transfer rules: two rides are two fares, 4.00 + 4.00
q zakroczym "total=8.00 PLN legs=2 unrated=0" $Z 08:00:00,board,Z1,100 08:10:00,exit,Z1,117 08:15:00,board,Z1,117 08:30:00,exit,Z1,120
# on the monthly medium (1) no single ride is sold: unrated
q zakroczym "UNRATED" --date 20251201 --media 1 08:00:00,board,Z1,100 08:20:00,exit,Z1,120

# --- Transcollines (CAD; a rule_priority column, all empty: empty fields are wildcards; timeframe GT-2026 =
# service FARES-GT-2026-1, every day 20260105..20260823, in America/Montreal)
C="--date 20260301"
# GAT to COL: REG-GAT-COL PS-500 5.00
q transcollines "fare=5.00 CAD product=PS-500" $C 08:00:00,board,921,F401-10 08:40:00,exit,921,411-56
# GAT to PNT: REG-GAT-PNT PS-2000 20.00; and back
q transcollines "fare=20.00 CAD product=PS-2000" $C 08:00:00,board,910,F401-10 09:30:00,exit,910,F101-60
q transcollines "fare=20.00 CAD product=PS-2000" $C 08:00:00,board,910,F101-60 09:30:00,exit,910,F401-14
# COL to COL and PNT to PNT: 5.00
q transcollines "fare=5.00 CAD product=PS-500" $C 08:00:00,board,921,411-56 08:20:00,exit,921,411-58
q transcollines "fare=5.00 CAD product=PS-500" $C 08:00:00,board,910,F101-60 08:20:00,exit,910,F103-06
# GAT to GAT: no rule: unrated
q transcollines "UNRATED" $C 08:00:00,board,921,F401-10 08:20:00,exit,921,F401-14
# no exit: every rule names a to_area: unrated
q transcollines "UNRATED" $C 08:00:00,board,921,F401-10
# after the fare service ends (20260823): GT-2026 does not apply: unrated
q transcollines "UNRATED" --date 20260901 08:00:00,board,921,F401-10 08:40:00,exit,921,411-56
# 23:30 on 20260823 in Montreal (03:30 UTC the next day): still the last day of the service: 5.00
q transcollines "fare=5.00 CAD" --date 20260823 23:30:00,board,921,F401-10 23:59:00,exit,921,411-56
# two rides, no transfer rules: 10.00
q transcollines "total=10.00 CAD legs=2 unrated=0" $C 08:00:00,board,921,411-56 08:40:00,exit,921,F401-10 17:00:00,board,921,F401-10 17:40:00,exit,921,411-56

# --- fare_leg_join_rules.txt: none of the four feeds publishes join rules, so our own small feed
# (tests/fares/feeds/join/README.md): metro then rail at one station is one effective leg (through,
# a1 -> r1, 4.00, fare_leg_rules.txt:5, joined by fare_leg_join_rules.txt:2); the bus 5 min after the
# rail exit is free (through -> bus within 600 s of the effective leg's arrival), 15 min after it is not
R=tests/fares/feeds
J="--date 20260302 08:00:00,entry,51,11 08:10:00,exit,51,21 08:15:00,entry,61,22 08:40:00,exit,61,31"
q join "fare=4.00 CNY product=p400 nominal=4.00 concession=0.00 transfer=0.00 cap=0.00 rule=fare_leg_rules.txt:5 group=through effective_leg=1-2" $J
q join "leg 2 08:15:00-08:40:00 route=61 stops=22-31 joined to leg 1 by fare_leg_join_rules.txt:2" $J
q join "total=4.00 CNY legs=3 unrated=0" $J 08:45:00,board,1,1
q join "total=5.00 CNY legs=3 unrated=0" $J 08:55:00,board,1,1
# rail then metro: the join rule is metro -> rail only: 3.00 + 2.00
q join "total=5.00 CNY legs=2 unrated=0" --date 20260302 08:00:00,entry,61,31 08:25:00,exit,61,22 08:30:00,entry,51,21 08:40:00,exit,51,11

# A refused join row (an unknown network) with --exclude-bad-rows: the two legs it would join are
# unrated, each (never priced apart as 2.00 + 3.00); without the option the feed is refused whole.
BADJ=$(mktemp -d /tmp/tapgate-join.XXXXXX)
trap 'rm -rf "$BADJ"' EXIT
cp "$R"/join/*.txt "$BADJ"/
printf 'from_network_id,to_network_id,from_stop_id,to_stop_id\nmetro,railway,,\n' >"$BADJ/fare_leg_join_rules.txt"
n=$((n + 1))
if "$TAPFARE" -f "$BADJ" quote $J >/dev/null 2>&1; then
	echo "FAIL join: a feed with a refused join row was taken without --exclude-bad-rows"; fails=$((fails + 1))
else
	echo "ok   join: a refused join row refuses the feed"
fi
R=$(dirname "$BADJ")
q "$(basename "$BADJ")" "total=0.00 CNY legs=2 unrated=2" --exclude-bad-rows $J
q "$(basename "$BADJ")" 'why="fare_leg_join_rules.txt:2 was refused by check (--exclude-bad-rows): the legs it would join are unrated"' --exclude-bad-rows $J
# a rail leg alone is not joined by the refused row: priced as published, 3.00
q "$(basename "$BADJ")" "total=3.00 CNY legs=1 unrated=0" --exclude-bad-rows --date 20260302 08:15:00,entry,61,22 08:40:00,exit,61,31

echo "real feeds: $n journeys, $fails failed"
[ "$fails" -eq 0 ]
