#!/bin/sh
# Runs the unit tests (cmocka), the e2e tests (pytest over the real binary on its PTY) and short
# libFuzzer runs, prints a line per suite and closes with one line "N passed, N failed".
# Environment: BUILDDIR, PYTHON, FUZZ_SECONDS (per target), FUZZ_ONLY=1, NO_FUZZ=1, NO_E2E=1,
# NO_LINT=1, E2E_ARGS.
B=${BUILDDIR:-build}
PY=${PYTHON:-/usr/bin/python3}
FS=${FUZZ_SECONDS:-10}
LOG=$B/test-logs
mkdir -p "$LOG"
passed=0
failed=0

add() { passed=$((passed + $1)); failed=$((failed + $2)); }

if [ -z "${FUZZ_ONLY:-}" ]; then
    for t in "$B"/unit/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        "$t" >"$LOG/$name.log" 2>&1
        rc=$?
        p=$(grep -c '^\[       OK \]' "$LOG/$name.log")
        f=$(grep '^\[  FAILED  \]' "$LOG/$name.log" | grep -vc 'test(s)')
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1 # crashed or aborted before cmocka could report
        fi
        echo "unit $name: $p passed, $f failed"
        [ "$f" -eq 0 ] || tail -n 30 "$LOG/$name.log"
        add "$p" "$f"
    done

    if [ -z "${NO_E2E:-}" ]; then
    MODTWIN_BIN="$(cd "$B" && pwd)/modtwin" "$PY" -m pytest -q -p no:cacheprovider \
        ${E2E_ARGS:-} test/e2e >"$LOG/e2e.log" 2>&1
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$LOG/e2e.log" | tail -n 1)
    p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    e=$(echo "$summary" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+')
    p=${p:-0}
    f=$((${f:-0} + ${e:-0}))
    [ -n "$summary" ] || f=$((f + 1))
    echo "e2e: $p passed, $f failed"
    [ "$f" -eq 0 ] || grep -E '^(FAILED|ERROR)|Error|assert' "$LOG/e2e.log" | head -n 40
    add "$p" "$f"
    fi
fi

# Sanitizer builds carry instrumentation data of their own: lint the plain build only.
if [ -z "${FUZZ_ONLY:-}" ] && [ -z "${NO_LINT:-}" ] && [ -f "$B/libmodtwin.a" ]; then
    if sh scripts/lint.sh "$B/libmodtwin.a" "$B/tools/main.o" >"$LOG/lint.log" 2>&1; then
        echo "lint: no mutable globals"
        add 1 0
    else
        echo "lint: FAILED"
        cat "$LOG/lint.log"
        add 0 1
    fi
fi

if [ -z "${NO_FUZZ:-}" ]; then
    for t in "$B"/fuzz/fuzz_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        mkdir -p "$B/fuzz-corpus/$name"
        if "$t" -max_total_time="$FS" -print_final_stats=1 "$B/fuzz-corpus/$name" \
            >"$LOG/$name.log" 2>&1; then
            runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$LOG/$name.log" |
                grep -oE '[0-9]+$')
            echo "fuzz $name: ${runs:-?} runs in ${FS}s, no crash"
            add 1 0
        else
            echo "fuzz $name: FAILED"
            tail -n 30 "$LOG/$name.log"
            add 0 1
        fi
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
