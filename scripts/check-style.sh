#!/usr/bin/env bash
# Style check: clang-format (the .clang-format at the repository root) over every C file of
# common/ workers/ tools/ tests/ bench/, changing nothing; fails listing what differs.
#   CLANG_FORMAT=clang-format-14  the binary to use (default: clang-format; Debian package
#   clang-format, in deploy/packages.txt). To apply the style to a file: clang-format -i FILE.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null; then
  echo "check-style: $cf not found (apt-get install clang-format)" >&2
  exit 2
fi
# Tracked files only: build trees and generated sources are not ours to style.
mapfile -t files < <(git ls-files 'common/*.[ch]' 'workers/*.[ch]' 'tools/*.[ch]' \
                                  'tests/*.[ch]' 'bench/*.[ch]')
bad=0
for f in "${files[@]}"; do
  "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "needs formatting: $f"; bad=$((bad + 1)); }
done
if [ "$bad" -gt 0 ]; then
  echo "check-style: $bad of ${#files[@]} files differ from .clang-format ($cf --dry-run FILE shows how)" >&2
  exit 1
fi
echo "check-style: ${#files[@]} files follow .clang-format"
