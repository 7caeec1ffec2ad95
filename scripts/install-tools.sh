#!/usr/bin/env bash
# Installs the pinned local infrastructure binaries into .tools/bin (git-ignored).
# Versions are pinned by tools/<name>/go.mod + go.sum (Go's own checksums); a binary already
# built from the same go.sum is left alone, so a second run is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.tools/bin"
mkdir -p "$BIN"

build() { # name package envvar
  local name=$1 pkg=$2 envvar=$3
  [ -n "${!envvar:-}" ] && return 0
  local stamp
  # The stamp covers the pinned versions and any patches applied to them.
  local files=("tools/$name/go.sum")
  if [ -d "tools/$name/patches" ]; then files+=(tools/"$name"/patches/*.patch); fi
  stamp=$(cat "${files[@]}" | sha256sum | cut -c1-16)
  [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  if ! command -v go >/dev/null 2>&1; then
    echo "flywheel: Go 1.24+ is needed to build $name (install it from go.dev/dl), or set $envvar to a server you already run." >&2
    exit 1
  fi
  echo "flywheel: building $name from tools/$name/go.mod into .tools/bin (first run only, a few minutes)…" >&2
  if [ "$name" = ferretdb ]; then
    # FerretDB embeds build/version/version.txt, which its module zip does not carry: build
    # from a vendored copy with the pinned version written in.
    local work="$ROOT/.tools/build/$name"
    rm -rf "$work" && mkdir -p "$work" && cp "tools/$name/go.mod" "tools/$name/go.sum" "$work/"
    (cd "$work" && go mod vendor)
    local ver
    ver=$(grep -oE 'FerretDB/FerretDB v[0-9.]+' "tools/$name/go.mod" | cut -d' ' -f2)
    chmod -R u+w "$work/vendor" && echo "$ver" > "$work/vendor/github.com/FerretDB/FerretDB/build/version/version.txt"
    # Small fixes of ours to the pinned source, each explained at the top of its file.
    for p in "$ROOT"/tools/"$name"/patches/*.patch; do
      [ -e "$p" ] || continue
      (cd "$work/vendor/github.com/FerretDB/FerretDB" && git apply "$p") || { echo "flywheel: $p does not apply" >&2; exit 1; }
    done
    (cd "$work" && CGO_ENABLED=0 go build -mod=vendor -trimpath -o "$BIN/$name" "$pkg")
    rm -rf "$work"
  else
    (cd "tools/$name" && CGO_ENABLED=0 go build -trimpath -o "$BIN/$name" "$pkg")
  fi
  echo "$stamp" > "$BIN/.$name.stamp"
}

build nats-server github.com/nats-io/nats-server/v2 NATS_URL
build ferretdb github.com/FerretDB/FerretDB/cmd/ferretdb MONGO_URL

# Deploy checks (helm lint/template, Kubernetes schema validation, workflow and Dockerfile lint):
# always needed by `npm test`, whatever MONGO_URL/NATS_URL say. Our own tools are stamped on
# their sources as well as go.sum, so an edit to main.go rebuilds them.
build_tool() { # name package [ldflags]
  local name=$1 pkg=$2 ldflags=${3:-}
  local stamp
  stamp=$({ cat "tools/$name/go.sum"; find "tools/$name" -maxdepth 1 -name '*.go' | sort | xargs -r cat; echo "$ldflags"; } | sha256sum | cut -c1-16)
  [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  if ! command -v go >/dev/null 2>&1; then
    echo "flywheel: Go 1.26+ is needed to build $name (install it from go.dev/dl)." >&2
    exit 1
  fi
  echo "flywheel: building $name from tools/$name/go.mod into .tools/bin…" >&2
  (cd "tools/$name" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$name" "$pkg")
  echo "$stamp" > "$BIN/.$name.stamp"
}
# helm's Makefile stamps its version and the Kubernetes version of its client libraries (used by
# `helm lint` for deprecated-API warnings and as the default .Capabilities.KubeVersion).
helm_version=$(grep -oE 'helm\.sh/helm/v3 v[0-9.]+' tools/helm/go.mod | cut -d' ' -f2)
k8s_minor=$(grep -oE 'k8s\.io/client-go v0\.[0-9]+' tools/helm/go.mod | cut -d. -f3)
build_tool helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$helm_version \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
build_tool kube-validate .
build_tool dockerfile-lint .
build_tool actionlint github.com/rhysd/actionlint/cmd/actionlint
