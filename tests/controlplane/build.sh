#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager and etcd from this wrapper module into a per-version cache dir.
# Idempotent: binaries already in the cache are reused. The last line on stdout is the bin dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Read versions from go.mod (not `go list`) so a warm cache needs no Go toolchain.
modversion() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/go.mod"; }
k8s_version="$(modversion k8s.io/kubernetes)"
etcd_version="$(modversion go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { echo "build.sh: cannot read versions from $here/go.mod" >&2; exit 1; }

key="${k8s_version}-etcd-${etcd_version}"
bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/meshswitch/controlplane/${key}"
binaries=(kube-apiserver kube-controller-manager etcd)

have_all() {
    local b
    for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}

if have_all; then
    echo "$bin_dir"
    exit 0
fi

command -v go >/dev/null || { echo "build.sh: 'go' is not on PATH (Go >= 1.26 is needed to build the control plane)" >&2; exit 1; }
mkdir -p "$bin_dir"

# Two concurrent callers (make and pytest) must not build twice or see half-written files.
exec 9>"$bin_dir/.lock"
if command -v flock >/dev/null; then flock 9; fi
if have_all; then
    echo "$bin_dir"
    exit 0
fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build() {
    local name="$1" pkg="$2" ldflags="$3" start
    [[ -x "$bin_dir/$name" ]] && return 0
    start=$SECONDS
    echo "build.sh: building $name ($pkg) ..." >&2
    (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin_dir/.$name.tmp" "$pkg") >&2
    mv -f "$bin_dir/.$name.tmp" "$bin_dir/$name"
    echo "build.sh: built $name in $((SECONDS - start)) s" >&2
}

build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build etcd go.etcd.io/etcd/server/v3 "-s -w"

echo "$bin_dir"
