#!/bin/sh
# Build the reference renderer against a Linkerd checkout, outside the repository.
#   build.sh VERSION SRC  -> prints the path of the built binary
# The generated go.mod is the release's own (every pinned dependency, same go.sum) with the
# module renamed and github.com/linkerd/linkerd2 replaced by SRC, so nothing is resolved
# beyond what the release pins.
set -eu
VERSION=$1
SRC=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${LINKERD_REFERENCE_BUILD:-$HOME/.cache/meshswitch/reference/linkerd-$VERSION}
test -f "$SRC/go.mod" && test -d "$SRC/controller/proxy-injector" || { echo "SRC=$SRC is not a linkerd2 checkout" >&2; exit 2; }
mkdir -p "$BUILD"
rm -f "$BUILD"/*.go
cp "$HERE"/main.go "$HERE"/sandbox.go "$BUILD"/
sed -e 's#^module .*#module meshswitch/reference/linkerd#' "$SRC/go.mod" > "$BUILD/go.mod"
cat >> "$BUILD/go.mod" <<MOD

require github.com/linkerd/linkerd2 v0.0.0-00010101000000-000000000000

replace github.com/linkerd/linkerd2 => $SRC
MOD
cp "$SRC/go.sum" "$BUILD/go.sum"
cd "$BUILD"
nice -n 10 go build -mod=mod -trimpath \
  -ldflags "-X github.com/linkerd/linkerd2/pkg/version.Version=$VERSION" \
  -o "$BUILD/linkerd-reference" . >&2
echo "$BUILD/linkerd-reference"
