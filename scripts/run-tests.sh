#!/bin/sh
# run-tests.sh KIND PROGRAM...: runs each test program (Check binaries, or
# shell scripts), prints one line per program and a closing
# "N passed, N failed" line; exits non-zero if any failed.
kind=$1; shift
pass=0; fail=0; failed=""
export CK_FORK=yes
for t in "$@"; do
    case "$t" in
        *.sh) cmd="sh $t" ;;
        *) cmd="$t" ;;
    esac
    log=$(mktemp)
    if $cmd >"$log" 2>&1; then
        pass=$((pass + 1))
        printf '%s: ok   %s (%s)\n' "$kind" "$t" "$(grep -E '^[0-9]+%: Checks' "$log" | tail -1)"
    else
        fail=$((fail + 1)); failed="$failed $t"
        printf '%s: FAIL %s\n' "$kind" "$t"
        sed 's/^/    /' "$log" | tail -60
    fi
    rm -f "$log"
done
echo "$kind: $pass passed, $fail failed"
[ "$fail" = 0 ]
