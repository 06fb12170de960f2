#!/usr/bin/env bash
# Renders every kustomize overlay and validates each built-in object with kubernetes-validate
# --strict (unknown fields are errors) against the oldest and the newest Kubernetes version
# podgate supports, then runs `podgate check` with the shipped policies over it (podgate's own
# Deployment must pass them), and evaluates the webhooks' matchConditions CEL
# (scripts/check-match-conditions.py, cel-python). cert-manager objects (cert-manager.io/v1) have no schema there: they are
# set aside explicitly, listed, and their shape is checked in tests/deploy.rs. Any other object
# without a schema fails the run.
#
# Usage: scripts/validate-manifests.sh          (from anywhere; needs kubectl, python3, cargo)
#   KUBE_VERSIONS="1.30 1.37"  versions to validate against (default below)
#   PODGATE=path/to/podgate    use this binary instead of `cargo run`
#
# 1.30 is the oldest supported version: matchConditions are GA there and the preStop `sleep`
# action is on by default (beta). 1.37 is the newest schema kubernetes-validate 1.37 ships.
set -euo pipefail

KUBE_VERSIONS=${KUBE_VERSIONS:-"1.30 1.37"}
KUBERNETES_VALIDATE_VERSION=1.37.0
CEL_PYTHON_VERSION=0.5.0

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "validate-manifests: $*" >&2; exit 1; }

command -v kubectl >/dev/null || die "kubectl is required (kubectl kustomize renders the overlays)"
command -v python3 >/dev/null || die "python3 is required (kubernetes-validate)"
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "validate-manifests: installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi
if ! python3 -c 'import celpy' 2>/dev/null; then
  echo "validate-manifests: installing cel-python ${CEL_PYTHON_VERSION}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "cel-python==${CEL_PYTHON_VERSION}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The dev overlay needs `podgate certs` output: render it from a temporary copy of the layout so
# nothing is generated inside the repository.
tree="$work/tree"
mkdir -p "$tree/certs"
cp -R deploy policies "$tree/"
cp certs/kustomization.yaml "$tree/certs/"
podgate() {
  if [ -n "${PODGATE:-}" ]; then "$PODGATE" "$@"; else cargo run --quiet --locked -- "$@"; fi
}
podgate certs --service podgate --namespace podgate-system --out "$tree/certs" \
  >"$work/ca-bundle" 2>"$work/certs.log" || { cat "$work/certs.log" >&2; die "podgate certs failed"; }
[ -s "$tree/certs/ca-bundle.env" ] && [ -s "$work/ca-bundle" ] ||
  die "podgate certs wrote no certificates to $tree/certs"

overlays=(base overlays/dev overlays/cert-manager)
status=0
for overlay in "${overlays[@]}"; do
  name=${overlay//\//-}
  rendered="$work/$name.yaml"
  kubectl kustomize "$tree/deploy/$overlay" >"$rendered"

  # Split the rendered stream: built-in kinds to validate, cert-manager kinds set aside.
  python3 - "$rendered" "$work/$name.builtin.yaml" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
docs = re.split(r"(?m)^---\n", open(src).read())
keep, skipped = [], []
for doc in docs:
    if not doc.strip():
        continue
    api = re.search(r"(?m)^apiVersion: (\S+)", doc)
    kind = re.search(r"(?m)^kind: (\S+)", doc)
    name = re.search(r"(?m)^  name: (\S+)", doc)
    if api and api.group(1).startswith("cert-manager.io/"):
        skipped.append(f"{kind.group(1) if kind else '?'}/{name.group(1) if name else '?'}")
    else:
        keep.append(doc)
open(dst, "w").write("---\n".join(keep))
for s in skipped:
    print(f"  not schema-checked (cert-manager CRD, shape checked in tests/deploy.rs): {s}")
PY

  for version in $KUBE_VERSIONS; do
    log="$work/$name.$version.log"
    if ! python3 -m kubernetes_validate --strict --quiet --kubernetes-version "$version" \
      "$work/$name.builtin.yaml" >"$log" 2>&1; then
      status=1
    fi
    # A built-in object without a schema would pass with only a warning: fail instead.
    if grep -q "Couldn't find schema" "$log"; then
      status=1
    fi
    if [ -s "$log" ]; then
      sed "s|^|  |" "$log"
    fi
    count=$(grep -c '^kind:' "$work/$name.builtin.yaml" || true)
    echo "deploy/$overlay: $count objects checked against Kubernetes $version"
  done
  if ! podgate check --policies policies "$rendered" | sed "s|^|  |"; then
    echo "deploy/$overlay: podgate check failed with the shipped policies" >&2
    status=1
  fi
  python3 scripts/check-match-conditions.py "$rendered" || status=1
done

[ "$status" -eq 0 ] || die "some manifests are not valid (see above)"
echo "validate-manifests: ok"
