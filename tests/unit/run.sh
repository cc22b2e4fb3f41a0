#!/bin/sh
# Runs every unit-test program in DIR and prints one closing summary.  A program that
# crashes, prints no summary, or ran no test at all counts as one failure.
dir=${1:?usage: run.sh DIR}
passed=0; failed=0; status=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        printf '%s\n' "$out"
        echo "$(basename "$t"): crashed or printed no summary (exit $rc)"
        failed=$((failed + 1)); status=1; continue
    fi
    if [ $((p + f)) -eq 0 ]; then
        printf '%s\n' "$out"
        echo "$(basename "$t"): ran no tests (exit $rc)"
        failed=$((failed + 1)); status=1; continue
    fi
    [ "$rc" -eq 0 ] || { printf '%s\n' "$out"; status=1; }
    passed=$((passed + p)); failed=$((failed + f))
done
if [ $((passed + failed)) -eq 0 ]; then
    echo "no unit test ran from $dir"
    status=1
fi
echo "unit: $passed passed, $failed failed"
exit $status
