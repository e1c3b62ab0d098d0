#!/bin/sh
# Fuzz one target on the stable toolchain (no sanitizer: ASan needs nightly).
# Usage: fuzz/run.sh <target> [seconds, default 90] [more libFuzzer args...]
# Copies seeds/<target>/ (tracked) into corpus/<target>/ (git-ignored) first; crashes land
# in artifacts/<target>/.
set -eu
cd "$(dirname "$0")"
target=${1:?usage: run.sh <target: see README> [seconds] [libFuzzer args]}
seconds=${2:-90}
shift
[ $# -gt 0 ] && shift
mkdir -p "corpus/$target"
cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
exec cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "$@"
