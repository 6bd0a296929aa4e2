#!/usr/bin/env bash
# npm run testbin — builds (or reuses) the upstream binaries the integration and e2e suites run:
#   kube-apiserver, kube-controller-manager, kubectl, kube-scheduler   (tools/kubernetes)
#   etcd                                               (tools/etcd)
#   istioctl, pilot-discovery + Istio's crd-all.gen.yaml (tools/istio)
#   helm                                               (tools/helm; renders charts/meshfork)
#   kwok + its node and pod stages in kwok-stages/     (tools/kwok; fake nodes for the controller tests)
#   gojq                                               (tools/gojq; Argo CD's jq, for the ignoreDifferences tests)
#   Gateway API's standard-channel CRDs as gateway-api-standard.yaml (tools/gateway-api; no binary)
#
# Each comes from a wrapper Go module under tools/ whose go.mod/go.sum pin the upstream version;
# nothing prebuilt is downloaded. Binaries land in a cache directory keyed by the pinned versions,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/meshfork/testbin/<kubernetes>-<etcd>-<istio>/
# or in $MESHFORK_TESTBIN when that is set. Binaries already there are reused. Progress goes to
# stderr; the LAST line of stdout is the directory (so `dir=$(npm run -s testbin | tail -n1)`).
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BINARIES=(kube-apiserver kube-controller-manager kubectl kube-scheduler etcd istioctl pilot-discovery helm kwok gojq)
CRD_FILE=istio-crd-all.gen.yaml
# KWOK's stages (paths in the sigs.k8s.io/kwok module, under kustomize/stage/), copied into
# kwok-stages/<file name>: KWOK refuses to start without stages, and these make a managed Node
# Ready and keep it so (heartbeat), and take a scheduled pod to Running/Ready, Succeeded (pods of
# Jobs) and gone once it is deleted.
KWOK_STAGES=(node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
STAGES_DIR=kwok-stages
# Gateway API's standard channel (config/crd/standard/ in sigs.k8s.io/gateway-api, the files its
# config/crd/kustomization.yaml lists), concatenated into one file. The module carries YAML only;
# its bundle-version annotation says which pin a cached copy came from.
GATEWAY_API_FILE=gateway-api-standard.yaml

ts() { date -u +%H:%M:%S; }
log() { echo "[testbin $(ts)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Pinned version of module $2 in tools/$1/go.mod, read without running Go (so a populated cache
# can be found on a machine without Go).
pinned() {
  local v
  v=$(sed -n -E "s#^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+(v[^[:space:]]+).*#\\2#p" "$tools_dir/$1/go.mod" | head -n1)
  [[ -n "$v" ]] || die "no version of $2 in tools/$1/go.mod"
  echo "$v"
}
K8S_VERSION=$(pinned kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(pinned etcd go.etcd.io/etcd/server/v3)
ISTIO_VERSION=$(pinned istio istio.io/istio)
HELM_VERSION=$(pinned helm helm.sh/helm/v3)
KWOK_VERSION=$(pinned kwok sigs.k8s.io/kwok)
GOJQ_VERSION=$(pinned gojq github.com/itchyny/gojq)
GATEWAY_API_VERSION=$(pinned gateway-api sigs.k8s.io/gateway-api)
KEY="${K8S_VERSION}-${ETCD_VERSION}-${ISTIO_VERSION}"

dir="${MESHFORK_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/meshfork/testbin/$KEY}"

# The version a kwok binary reports (`kwok version v0.8.0 go1.26.8 (linux/amd64)`). HOME points
# at an empty directory so that no ~/.kwok/kwok.yaml is read.
kwok_version() {
  [[ -x "$1" ]] || return 0
  HOME=/nonexistent "$1" --version 2>/dev/null | sed -n -E 's/^kwok version ([^ ]+).*/\1/p' | head -n1
}

# The version a gojq binary reports (`gojq 0.12.19 (rev: ...)`), as v0.12.19.
gojq_version() {
  [[ -x "$1" ]] || return 0
  "$1" --version 2>/dev/null | sed -n -E 's/^gojq ([^ ]+).*/v\1/p' | head -n1
}

# The bundle version a Gateway API CRD file was copied from (its first
# `gateway.networking.k8s.io/bundle-version:` annotation), empty when there is no such file.
gateway_api_version() {
  [[ -s "$1" ]] || return 0
  sed -n -E 's#^[[:space:]]*gateway\.networking\.k8s\.io/bundle-version:[[:space:]]*([^[:space:]]+).*#\1#p' "$1" | head -n1
}

complete() {
  local b s
  for b in "${BINARIES[@]}"; do [[ -x "$1/$b" ]] || return 1; done
  [[ -s "$1/$CRD_FILE" ]] || return 1
  for s in "${KWOK_STAGES[@]}"; do [[ -s "$1/$STAGES_DIR/${s##*/}" ]] || return 1; done
  # helm, kwok and the Gateway API CRDs are not part of the directory key: a cached one of
  # another pin is rebuilt (recopied).
  [[ "$(gateway_api_version "$1/$GATEWAY_API_FILE")" == "$GATEWAY_API_VERSION" ]] || return 1
  [[ "$("$1/helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]] || return 1
  [[ "$(kwok_version "$1/kwok")" == "$KWOK_VERSION" ]] || return 1
  [[ "$(gojq_version "$1/gojq")" == "$GOJQ_VERSION" ]] || return 1
}

if complete "$dir"; then
  log "reusing $dir (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, istio $ISTIO_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION, gojq $GOJQ_VERSION, gateway-api $GATEWAY_API_VERSION)"
  echo "$dir"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is needed to build the test binaries (go $(sed -n 's/^go //p' "$tools_dir/kubernetes/go.mod") or newer on PATH; see tools/README.md)"
export GOTOOLCHAIN=local CGO_ENABLED=0
# -mod=readonly: build exactly what go.mod/go.sum pin; never edit them during a build.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# One builder at a time per directory (two test runs started together wait for each other).
exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "another testbin build holds $dir/.lock; waiting"
  flock 9
fi

log "building into $dir with $(go version | cut -d' ' -f3) on $(nproc) cores"
log "pinned: kubernetes $K8S_VERSION, etcd $ETCD_VERSION, istio $ISTIO_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION, gateway-api $GATEWAY_API_VERSION"
log "go caches: GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

# Time of a module version's commit as UTC ISO-8601, used as buildDate so that rebuilds of one
# pin give the same version output.
module_time() {
  (cd "$tools_dir/$1" && go list -m -json "$2@$3") | sed -n -E 's/^[[:space:]]*"Time": "([^"]+)".*/\1/p' | head -n1
}

# build <module dir> <package> <binary> <ldflags>
build() {
  local mod=$1 pkg=$2 bin=$3 ldflags=$4
  if [[ -x "$dir/$bin" ]]; then
    log "$bin: present, reusing"
    return 0
  fi
  local start=$SECONDS tmp="$dir/.$bin.tmp.$$"
  log "$bin: building $pkg"
  # Heartbeat so that a 10+ minute cold build visibly makes progress.
  ( while sleep 60; do log "$bin: still building ($(( (SECONDS - start) / 60 ))m elapsed)"; done ) &
  hb=$!
  local rc=0
  # -w drops DWARF at link time anyway, so the compiler need not emit it (-dwarf=false): a cold
  # build of etcd took 8% less compile CPU (147 s user instead of 160 s, peak RSS 319 instead of
  # 411 MB; README "Test binaries"). DWARF is debug information only: same program, same
  # --version; the bytes differ (build ID, layout).
  (cd "$tools_dir/$mod" && go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w $ldflags" -o "$tmp" "$pkg") || rc=$?
  kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
  hb=""
  if (( rc != 0 )); then
    rm -f "$tmp"
    die "$bin: go build failed (exit $rc) after $(( SECONDS - start ))s"
  fi
  mv -f "$tmp" "$dir/$bin"
  log "$bin: built in $(( SECONDS - start ))s ($(du -h "$dir/$bin" | cut -f1))"
}

total_start=$SECONDS
hb=""
trap '[[ -n "$hb" ]] && kill "$hb" 2>/dev/null; rm -f "$dir"/.*.tmp.$$' EXIT

# --- Kubernetes: the version stamps hack/lib/version.sh (kube::version::ldflags) sets, on both
# k8s.io/client-go/pkg/version and k8s.io/component-base/version, so /version, `--version` and
# `kubectl version` report the pinned release instead of v0.0.0-master.
k8s_ldflags() {
  local v=$K8S_VERSION major minor date flags="" pkg
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  date=$(module_time kubernetes k8s.io/kubernetes "$v")
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X '$pkg.gitVersion=$v' -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$minor'"
    flags+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=${date:-1970-01-01T00:00:00Z}'"
  done
  echo "$flags"
}
need_k8s=0
for b in kube-apiserver kube-controller-manager kubectl kube-scheduler; do [[ -x "$dir/$b" ]] || need_k8s=1; done
if (( need_k8s )); then
  flags=$(k8s_ldflags)
  build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$flags"
  build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$flags"
  build kubernetes k8s.io/kubernetes/cmd/kubectl kubectl "$flags"
  build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$flags"
fi

# --- etcd: its version is a constant in go.etcd.io/etcd/api/v3/version; only the git SHA is
# stamped by etcd's build script, and the module does not carry it, so record the module version.
build etcd go.etcd.io/etcd/server/v3 etcd "-X 'go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION'"

# --- Istio: the variables common/scripts/report_build_info.sh fills in istio.io/istio/pkg/version.
istio_ldflags() {
  local v=$ISTIO_VERSION rev p=istio.io/istio/pkg/version
  rev=${v##*-}   # pseudo-version v0.0.0-<time>-<12-char commit>
  echo "-X '$p.buildVersion=$v' -X '$p.buildGitRevision=$rev' -X '$p.buildStatus=Clean'" \
       "-X '$p.buildTag=$v' -X '$p.buildOS=$(go env GOOS)' -X '$p.buildArch=$(go env GOARCH)'"
}
if [[ ! -x "$dir/istioctl" || ! -x "$dir/pilot-discovery" ]]; then
  flags=$(istio_ldflags)
  build istio istio.io/istio/istioctl/cmd/istioctl istioctl "$flags"
  build istio istio.io/istio/pilot/cmd/pilot-discovery pilot-discovery "$flags"
fi

# --- helm: renders charts/meshfork in the chart test; its version lives in internal/version.
if [[ -x "$dir/helm" && "$("$dir/helm" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]]; then
  log "helm: cached binary is not $HELM_VERSION, rebuilding"
  rm -f "$dir/helm"
fi
build helm helm.sh/helm/v3/cmd/helm helm "-X 'helm.sh/helm/v3/internal/version.version=$HELM_VERSION'"

# --- kwok: hack/releases.sh stamps sigs.k8s.io/kwok/pkg/consts.Version (the release tag) and
# PreRelease ("GA" for a release; anything else is appended to the version as a pre-release).
if [[ -x "$dir/kwok" && "$(kwok_version "$dir/kwok")" != "$KWOK_VERSION" ]]; then
  log "kwok: cached binary is not $KWOK_VERSION, rebuilding"
  rm -f "$dir/kwok"
fi
build kwok sigs.k8s.io/kwok/cmd/kwok kwok \
  "-X 'sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION' -X 'sigs.k8s.io/kwok/pkg/consts.PreRelease=GA'"

# --- gojq: the jq implementation Argo CD evaluates ignoreDifferences.jqPathExpressions with
# (util/argo/normalizers/diff_normalizer.go). Its version is a constant of the module (cli.version);
# the Makefile stamps only the git revision, which the module does not carry.
if [[ -x "$dir/gojq" && "$(gojq_version "$dir/gojq")" != "$GOJQ_VERSION" ]]; then
  log "gojq: cached binary is not $GOJQ_VERSION, rebuilding"
  rm -f "$dir/gojq"
fi
build gojq github.com/itchyny/gojq/cmd/gojq gojq ""

# Path of a module version's extracted source in the module cache (downloaded if missing).
module_dir() {
  (cd "$tools_dir/$1" && go mod download -json "$2@$3") | sed -n -E 's/^[[:space:]]*"Dir": "([^"]+)".*/\1/p'
}

# Istio's CRDs, from the very module version the binaries were built from.
if [[ ! -s "$dir/$CRD_FILE" ]]; then
  istio_src=$(module_dir istio istio.io/istio "$ISTIO_VERSION")
  src="$istio_src/manifests/charts/base/files/crd-all.gen.yaml"
  [[ -s "$src" ]] || die "no $src in the module cache"
  cp "$src" "$dir/$CRD_FILE.tmp" && chmod 0644 "$dir/$CRD_FILE.tmp" && mv -f "$dir/$CRD_FILE.tmp" "$dir/$CRD_FILE"
  log "copied manifests/charts/base/files/crd-all.gen.yaml to $CRD_FILE"
fi

# KWOK's stages, from the very module version kwok was built from (always recopied: a kwok
# rebuilt for another pin gets that pin's stages).
kwok_src=$(module_dir kwok sigs.k8s.io/kwok "$KWOK_VERSION")
mkdir -p "$dir/$STAGES_DIR"
for s in "${KWOK_STAGES[@]}"; do
  src="$kwok_src/kustomize/stage/$s"
  [[ -s "$src" ]] || die "no $src in the module cache"
  f="$dir/$STAGES_DIR/${s##*/}"
  cp "$src" "$f.tmp" && chmod 0644 "$f.tmp" && mv -f "$f.tmp" "$f"
done
log "copied kwok's stages from kustomize/stage/ (${KWOK_STAGES[*]}) to $STAGES_DIR/"

# Gateway API's standard-channel CRDs, from the pinned module (recopied when a cached file is of
# another bundle version). Only CustomResourceDefinitions: the channel also ships a
# ValidatingAdmissionPolicy guarding CRD upgrades, which no test needs.
if [[ "$(gateway_api_version "$dir/$GATEWAY_API_FILE")" != "$GATEWAY_API_VERSION" ]]; then
  gwapi_src=$(module_dir gateway-api sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")
  [[ -d "$gwapi_src/config/crd/standard" ]] || die "no $gwapi_src/config/crd/standard in the module cache"
  tmp="$dir/$GATEWAY_API_FILE.tmp"
  : > "$tmp"
  n=0
  for f in "$gwapi_src"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
    grep -q '^kind: CustomResourceDefinition' "$f" || continue
    { [[ $n -gt 0 ]] && echo '---'; grep -v '^---$' "$f"; } >> "$tmp"
    n=$((n + 1))
  done
  (( n > 0 )) || die "no CRDs in $gwapi_src/config/crd/standard"
  chmod 0644 "$tmp" && mv -f "$tmp" "$dir/$GATEWAY_API_FILE"
  log "copied $n CRDs from config/crd/standard/ of sigs.k8s.io/gateway-api $GATEWAY_API_VERSION to $GATEWAY_API_FILE"
fi

cat > "$dir/versions.json" <<JSON
{"kubernetes": "$K8S_VERSION", "etcd": "$ETCD_VERSION", "istio": "$ISTIO_VERSION", "helm": "$HELM_VERSION", "kwok": "$KWOK_VERSION", "gojq": "$GOJQ_VERSION", "gateway-api": "$GATEWAY_API_VERSION"}
JSON

complete "$dir" || die "build finished but $dir is incomplete"

# Each binary must run and report its pinned version (catches a broken build or missing stamps).
check_version() {
  local bin=$1 want=$2 out line; shift 2
  out=$("$dir/$bin" "$@" 2>&1) || die "$bin $* failed: $out"
  line=$(grep -F -m1 -- "$want" <<<"$out") || die "$bin $* printed '$out', expected '$want' (version stamps?)"
  log "$bin $*: $line"
}
check_version kube-apiserver "Kubernetes $K8S_VERSION" --version
check_version kube-controller-manager "Kubernetes $K8S_VERSION" --version
check_version kubectl "Client Version: $K8S_VERSION" version --client
check_version kube-scheduler "Kubernetes $K8S_VERSION" --version
check_version etcd "etcd Version: ${ETCD_VERSION#v}" --version
check_version istioctl "$ISTIO_VERSION" version --remote=false
check_version pilot-discovery "$ISTIO_VERSION" version -s
check_version helm "$HELM_VERSION" version --short
HOME=/nonexistent check_version kwok "kwok version $KWOK_VERSION " --version
check_version gojq "gojq ${GOJQ_VERSION#v} " --version
log "done in $(( SECONDS - total_start ))s"
echo "$dir"
