#!/bin/sh
# make fuzz: run every libFuzzer target (build/fuzz/fuzz_*) for FUZZ_SECONDS,
# from a corpus kept in $BUILD/fuzz-corpus and seeded with valid frames and
# acks. Exits non-zero if a target finds a crash (the input is saved as crash-*).
set -eu
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
status=0
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus="$BUILD/fuzz-corpus/$name"
	mkdir -p "$corpus"
	# Seeds: the worked example of docs/PROTOCOL.md, frame and ack.
	printf '\124\107\001\001\000\000\003\351\000\001\001\000\000\000\000\000\000\000\000\052' >"$corpus/seed-header"
	"$BUILD/tests/test_proto" >/dev/null 2>&1 || true
	echo "fuzz: $name for ${FUZZ_SECONDS}s"
	if ! "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -artifact_prefix="$BUILD/fuzz/" "$corpus" \
		>"$BUILD/fuzz/$name.log" 2>&1; then
		echo "fuzz: $name FOUND A CRASH; see $BUILD/fuzz/$name.log and $BUILD/fuzz/crash-*"
		tail -n 30 "$BUILD/fuzz/$name.log"
		status=1
	else
		grep -E "stat::number_of_executed_units|cov:" "$BUILD/fuzz/$name.log" | tail -n 2
		echo "fuzz: $name: no crash"
	fi
done
exit $status
