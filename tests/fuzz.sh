#!/bin/sh
# tests/fuzz.sh - what `make fuzz` runs: every libFuzzer target $BUILD/fuzz/fuzz_*
# for FUZZ_SECONDS seconds each (default 60), from a corpus kept between runs in
# $BUILD/fuzz-corpus/<target>. A target that knows FUZZ_WRITE_SEEDS (fuzz_frame
# does) first writes valid messages there, so fuzzing starts from frames that
# pass the parser rather than from nothing.
#
# Exits non-zero if any target crashes or breaks one of its properties; the
# input that did it is kept in $BUILD/fuzz-artifacts/ and the log in
# $BUILD/fuzz-logs/. Reproduce with: $BUILD/fuzz/<target> <that file>
set -u
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# Longer than a frame may be, so that "oversized" is explored too.
MAX_LEN=1500
status=0
ran=0
mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"

case $FUZZ_SECONDS in
'' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$FUZZ_SECONDS'" >&2; exit 2 ;;
esac
if [ "$FUZZ_SECONDS" -eq 0 ]; then
	limit=-runs=0 # only replay the corpus: libFuzzer reads max_total_time=0 as "forever"
else
	limit=-max_total_time=$FUZZ_SECONDS
fi

for target in "$BUILD"/fuzz/fuzz_*; do
	if [ ! -f "$target" ] || [ ! -x "$target" ]; then continue; fi
	name=$(basename "$target")
	corpus=$BUILD/fuzz-corpus/$name
	log=$BUILD/fuzz-logs/$name.log
	mkdir -p "$corpus"
	ran=$((ran + 1))
	# Seed, and replay the kept corpus once: a crash here is a regression.
	if ! FUZZ_WRITE_SEEDS=$corpus "$target" -runs=0 -max_len=$MAX_LEN \
		-artifact_prefix="$BUILD/fuzz-artifacts/$name-" "$corpus" >"$log" 2>&1; then
		echo "fuzz: $name CRASHED on its corpus; see $log"
		tail -n 30 "$log"
		status=1
		continue
	fi
	echo "fuzz: $name, $FUZZ_SECONDS s, corpus $corpus ($(find "$corpus" -type f | wc -l) inputs)"
	if "$target" "$limit" -max_len=$MAX_LEN -print_final_stats=1 \
		-artifact_prefix="$BUILD/fuzz-artifacts/$name-" "$corpus" >>"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		echo "fuzz: $name: no crash in ${runs:-?} runs"
	else
		echo "fuzz: $name FOUND A CRASH; see $log and $BUILD/fuzz-artifacts/"
		tail -n 30 "$log"
		status=1
	fi
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz: no target in $BUILD/fuzz/ (build them with make fuzz)" >&2
	exit 1
fi
exit $status
