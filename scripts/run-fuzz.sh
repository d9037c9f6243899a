#!/bin/sh
# run-fuzz.sh SECONDS: runs every libFuzzer target built by tests/fuzz/fuzz.mk
# (in ${O:-.}/build/fuzz) for SECONDS each, as many at a time as there are
# cores (at most 2, so with 15 s and six targets the run takes ~45 s).
#
# Each target starts from a private copy of its seed corpus
# tests/fuzz/corpus/<target>/ (if there is one), so runs never write into the
# tree. A crash, leak, timeout or out-of-memory fails the run; the input that
# caused it is kept in ${O:-.}/build/fuzz/crashes/ and its reproduction
# command is printed. Exits non-zero if any target failed or none was built.
set -u

secs=${1:-60}
case "$secs" in
    ''|*[!0-9]*) echo "usage: run-fuzz.sh SECONDS" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${O:-.}/build/fuzz
case "$dir" in /*) ;; *) dir=$top/$dir ;; esac
jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2

targets=""
for t in "$dir"/fuzz_*; do
    [ -f "$t" ] && [ -x "$t" ] && targets="$targets $t"
done
if [ -z "$targets" ]; then
    echo "fuzz: no targets in $dir (run make fuzz-build first)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# run_one TARGET: runs it in its own directory; writes its exit status.
run_one() {
    t=$1
    name=$(basename "$t")
    w=$work/$name
    mkdir -p "$w/corpus" "$w/artifacts"
    if [ -d "$top/tests/fuzz/corpus/$name" ]; then
        cp -R "$top/tests/fuzz/corpus/$name/." "$w/corpus/"
    fi
    # -rss_limit_mb and -timeout turn memory blow-ups and hangs into failures
    (cd "$w" && "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$w/artifacts/" "$w/corpus" \
        >"$w/log" 2>&1)
    echo $? >"$w/status"
}

pids=""
n=0
pass=0
fail=0
finish() {
    for p in $pids; do
        wait "$p"
    done
    pids=""
    n=0
}
for t in $targets; do
    run_one "$t" &
    pids="$pids $!"
    n=$((n + 1))
    [ "$n" -ge "$jobs" ] && finish
done
finish

mkdir -p "$dir/crashes"
for t in $targets; do
    name=$(basename "$t")
    w=$work/$name
    st=$(cat "$w/status" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -1)
    if [ "$st" = 0 ]; then
        pass=$((pass + 1))
        printf 'fuzz: ok   %s (%s runs in %ss)\n' "$name" "${runs:-?}" "$secs"
    else
        fail=$((fail + 1))
        printf 'fuzz: FAIL %s (exit %s)\n' "$name" "$st"
        grep -E 'ERROR|SUMMARY|check failed|==[0-9]+==' "$w/log" | head -20 | sed 's/^/    /'
        tail -25 "$w/log" | sed 's/^/    /'
        for a in "$w"/artifacts/*; do
            [ -f "$a" ] || continue
            cp "$a" "$dir/crashes/$name-$(basename "$a")"
            echo "    reproduce: $t $dir/crashes/$name-$(basename "$a")"
        done
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
