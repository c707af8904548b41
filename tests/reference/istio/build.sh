#!/bin/sh
# build.sh SRC TAG BUILD_DIR [MODULE=REPLACEMENT ...]
# Builds the renderer against an Istio release tree. The module file is made
# from the release's own go.mod/go.sum (so dependency versions are the
# release's pins; no `go mod tidy`), plus a replace of istio.io/istio by SRC
# and any extra replaces given (for pinned versions the module proxy refuses:
# MODULE=path/to/dir or MODULE=MODULE@version).
set -eu
SRC=$(cd "$1" && pwd); TAG=$2; B=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$B"
cp "$HERE/main.go" "$B/main.go"
sed -e 's#^module istio.io/istio$#module meshswitch/reference/istio#' "$SRC/go.mod" > "$B/go.mod"
{
  echo
  echo "require istio.io/istio v0.0.0-00010101000000-000000000000"
  echo
  echo "replace istio.io/istio => $SRC"
  for r in "$@"; do
    m=${r%%=*}; t=${r#*=}
    case "$t" in
      *@*) echo "replace $m => ${t%@*} ${t#*@}" ;;
      *) echo "replace $m => $t" ;;
    esac
  done
} >> "$B/go.mod"
cp "$SRC/go.sum" "$B/go.sum"
cd "$B"
GOFLAGS=-mod=mod nice -n 10 go build -o istio-reference .
echo "built $B/istio-reference for istio $TAG"
