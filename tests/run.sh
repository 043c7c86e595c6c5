#!/bin/sh
# Run the whole suite: every unit test binary (build/tests/test_*), then every
# integration test (tests/it_*.sh) against the real gateway on loopback.
# A test that exits 77 is skipped (the kernel lacks a feature) and says why.
# Prints one line per test and a summary; exits non-zero if any test failed.
set -u
BUILD=${BUILD:-build}
export BUILD
passed=0 failed=0 skipped=0 failed_names=""

run_one() {
	name=$1
	shift
	start=$(date +%s)
	log="$BUILD/test-logs/$name.log"
	mkdir -p "$BUILD/test-logs"
	"$@" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) passed=$((passed + 1)); echo "PASS  $name (${secs}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP  $name: $(tail -n 1 "$log")" ;;
	*) failed=$((failed + 1)); failed_names="$failed_names $name"
	   echo "FAIL  $name (exit $rc, ${secs}s); last lines of $log:"; tail -n 30 "$log" | sed 's/^/      /' ;;
	esac
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t"
done
for t in tests/it_*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .sh)" sh "$t"
done

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || { echo "failed:$failed_names"; exit 1; }
[ "$passed" -gt 0 ] || { echo "no test ran"; exit 1; }
exit 0
