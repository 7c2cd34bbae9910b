#!/usr/bin/env bash
# The speed table of issue 15 / SPEC §9: times the classic programs of this directory
# whole-process (start-up included) under Omega (release build), compiled Guile 3.0 and Lua 5.4
# (ports in lua/), best of RUNS runs each, and prints a markdown table with the ratios and their
# geometric means.
#
#   benches/programs/run.sh              # benchmark-sized inputs (about 1 min on a quiet machine)
#   SIZE=test benches/programs/run.sh    # the test inputs of the files themselves (a smoke test)
#   RUNS=5 benches/programs/run.sh       # best of 5 instead of 3
#
# It builds `omega` in release, installs guile-3.0 and lua5.4 from Debian if they are missing
# (apt-get install -y; apt-get update only when the install fails without it), and checks
# that the three implementations print the same output (numbers compared as numbers; a mismatch is
# marked `≠` and counts in no mean). Guile runs the Omega source itself (these programs are valid Scheme) after a
# two-line prelude (`println`, `inexact`), compiled once with `compile-file`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROGS="$ROOT/benches/programs"
SIZE=${SIZE:-bench}
RUNS=${RUNS:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# name | sed expression turning the test input into the benchmark input | Lua arguments ("-" = no port)
TABLE='fib|s/(define input 25)/(define input 30)/|30
fibfp|s/(define input 25.0)/(define input 30.0)/|30
tak|s/(tak 18 12 6))/(tak 24 16 8))/|24 16 8
ack|s/(ack 3 5))/(ack 3 9))/|9
sum|s/(repeat 20 10000))/(repeat 100 100000))/|100 100000
sumfp|s/(run 100000.0))/(run 5000000.0))/|5000000
nqueens|s/(nqueens 8))/(nqueens 10))/|10
mbrot|s/0.005 40))/0.005 150))/|-
cpstak|s/(cpstak 18 12 6))/(cpstak 24 16 8))/|-
takl|s/(listn 18) (listn 12) (listn 6)/(listn 24) (listn 16) (listn 8)/|-
deriv|s/(repeat 2000)/(repeat 100000)/|-
diviter|s/(repeat 200)/(repeat 20000)/|-
divrec|s/(repeat 200)/(repeat 5000)/|-'

# ---- tools ---------------------------------------------------------------------------------
missing=()
command -v guile-3.0 >/dev/null 2>&1 || missing+=(guile-3.0)
command -v lua5.4 >/dev/null 2>&1 || missing+=(lua5.4)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} …" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${missing[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; }
fi
echo "building omega (release) …" >&2
(cd "$ROOT" && cargo build --release -q -p omega-cli)
OMEGA="${CARGO_TARGET_DIR:-$ROOT/target}/release/omega"

# ---- timing --------------------------------------------------------------------------------
# best_of OUTFILE CMD…: runs CMD RUNS times, keeps its output of the last run in OUTFILE,
# prints the best wall time in seconds.
best_of() {
    local out=$1
    shift
    local best=""
    for _ in $(seq "$RUNS"); do
        local t0 t1
        t0=$(date +%s%N)
        if ! "$@" >"$out" 2>"$out.err"; then
            echo "FAIL"
            return
        fi
        t1=$(date +%s%N)
        local ms=$(((t1 - t0) / 1000000))
        if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
    done
    awk -v ms="$best" 'BEGIN { printf "%.3f", ms / 1000 }'
}

# same_output A B: the two outputs are equal, numbers compared as numbers (Guile writes
# 1.25000025e13 where Omega and Lua write 12500002500000.0).
same_output() {
    local norm='{ for (i = 1; i <= NF; i++) { t = $i; if (t ~ /^-?[0-9]+(\.[0-9]*)?(e[-+]?[0-9]+)?$/) t = sprintf("%.15g", t); printf "%s ", t } print "" }'
    [[ "$(awk "$norm" "$1")" == "$(awk "$norm" "$2")" ]]
}

cat >"$WORK/prelude.scm" <<'SCM'
(define (inexact x) (exact->inexact x))
(define (println . xs)
  (let loop ((xs xs) (first #t))
    (when (pair? xs) (unless first (display " ")) (display (car xs)) (loop (cdr xs) #f)))
  (newline))
SCM

echo "| program | Omega (s) | Guile 3.0 (s) | Lua 5.4 (s) | Omega / Guile | Omega / Lua |"
echo "|---|---:|---:|---:|---:|---:|"
ratios_guile=()
ratios_lua=()
while IFS='|' read -r name expr lua_args; do
    src="$PROGS/$name.lisp"
    if [[ $SIZE == bench ]]; then
        sed "$expr" "$src" >"$WORK/$name.lisp"
        cmp -s "$src" "$WORK/$name.lisp" && { echo "run.sh: the bench input of $name did not apply" >&2; exit 1; }
    else
        cp "$src" "$WORK/$name.lisp"
        lua_args=$([[ $lua_args == - ]] && echo - || echo "")
    fi
    t_omega=$(best_of "$WORK/$name.omega.out" "$OMEGA" run --no-progress "$WORK/$name.lisp")

    cat "$WORK/prelude.scm" "$WORK/$name.lisp" >"$WORK/$name.scm"
    t_guile=FAIL
    if guile-3.0 --no-auto-compile -c "(use-modules (system base compile)) (compile-file \"$WORK/$name.scm\" #:output-file \"$WORK/$name.go\")" >/dev/null 2>&1; then
        t_guile=$(best_of "$WORK/$name.guile.out" guile-3.0 --no-auto-compile -c "(load-compiled \"$WORK/$name.go\")")
    fi

    t_lua=-
    if [[ $lua_args != - ]]; then
        # shellcheck disable=SC2086 # the arguments are words
        t_lua=$(best_of "$WORK/$name.lua.out" lua5.4 "$PROGS/lua/$name.lua" $lua_args)
    fi

    r_guile=-
    if [[ $t_omega != FAIL && $t_guile != FAIL ]]; then
        if same_output "$WORK/$name.omega.out" "$WORK/$name.guile.out"; then
            r_guile=$(awk -v a="$t_omega" -v b="$t_guile" 'BEGIN { printf "%.2f", a / b }')
            ratios_guile+=("$r_guile")
        else
            r_guile="≠"
        fi
    fi
    r_lua=-
    if [[ $t_omega != FAIL && $t_lua != - && $t_lua != FAIL ]]; then
        if same_output "$WORK/$name.omega.out" "$WORK/$name.lua.out"; then
            r_lua=$(awk -v a="$t_omega" -v b="$t_lua" 'BEGIN { printf "%.2f", a / b }')
            ratios_lua+=("$r_lua")
        else
            r_lua="≠"
        fi
    fi
    echo "| $name | $t_omega | $t_guile | $t_lua | $r_guile | $r_lua |"
done <<<"$TABLE"

geomean() {
    if (($# == 0)); then echo "-"; return; fi
    printf '%s\n' "$@" | awk '{ s += log($1); n++ } END { printf "%.2f (%d programs)", exp(s / n), n }'
}
echo "| **geometric mean** | | | | **$(geomean "${ratios_guile[@]}")** | **$(geomean "${ratios_lua[@]}")** |"
echo
echo "Best of $RUNS whole-process runs, SIZE=$SIZE; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
