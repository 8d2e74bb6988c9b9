#!/usr/bin/env bash
# update-readme.sh: puts the markdown section written by `run-bench.sh --markdown FILE` into the
# README's Performance section, between the lines `<!-- bench:begin -->` and `<!-- bench:end -->`.
# Nothing else of the README changes.
# Usage: test/bench/update-readme.sh FILE [README] (default: the repository's README.md)
set -euo pipefail

if (($# < 1 || $# > 2)) || [[ $1 = -h || $1 = --help ]]; then
    sed -n 's/^# \{0,1\}//; /^Usage:/p' "$0"
    (($# >= 1)) && [[ $1 = -h || $1 = --help ]] && exit 0
    exit 2
fi
section=$1
readme=${2:-$(cd "$(dirname "$0")/../.." && pwd)/README.md}
[[ -s $section ]] || { echo "update-readme.sh: $section is missing or empty" >&2; exit 1; }
begin='<!-- bench:begin -->' end='<!-- bench:end -->'
nb=$(grep -cxF "$begin" "$readme" || true)
ne=$(grep -cxF "$end" "$readme" || true)
if [[ $nb != 1 || $ne != 1 ]]; then
    echo "update-readme.sh: $readme needs exactly one \`$begin' and one \`$end' line" >&2
    exit 1
fi
tmp=$(mktemp "$readme.XXXXXX")
trap 'rm -f "$tmp"' EXIT
awk -v begin="$begin" -v end="$end" -v section="$section" '
    $0 == begin { print; print ""; while ((getline line < section) > 0) print line; print ""; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }
' "$readme" >"$tmp"
grep -qxF "$end" "$tmp" || { echo "update-readme.sh: \`$end' comes before \`$begin'" >&2; exit 1; }
chmod --reference="$readme" "$tmp"
mv "$tmp" "$readme"
echo "update-readme.sh: $readme: Performance section replaced from $section"
