#!/usr/bin/env bash
# Renders every kustomize overlay and validates each built-in object with kubernetes-validate
# --strict (unknown fields are errors) against the oldest and the newest Kubernetes version
# podgate supports, then runs `podgate check` with the shipped policies over it (podgate's own
# Deployment must pass them), and evaluates the webhooks' matchConditions CEL
# (scripts/check-match-conditions.py, cel-python). Besides the overlays it renders cert-manager
# with every optional component of deploy/components (monitoring, NetworkPolicy) and once more
# into another namespace. CRD-based objects have no schema there: cert-manager's
# (cert-manager.io/v1) and the Prometheus Operator's (monitoring.coreos.com/v1) are set aside
# explicitly, listed, checked as well-formed YAML here and for shape in tests/deploy.rs; the
# PrometheusRule's rules also pass `promtool check rules` (promtool is installed from the
# Debian package `prometheus` when missing and apt-get can run). Any other object without a
# schema fails the run.
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
# Every optional component (but the failure-policy switch) on top of cert-manager, and the same
# installed into another namespace the documented way (deploy/README.md).
components=$(cd deploy/components && for c in *; do [ "$c" = fail-open ] || echo "  - ../deploy/components/$c"; done)
# (every component: metrics-service, prometheus, grafana-dashboard, network-policy, audit, ...)
mkdir -p "$tree/all-components" "$tree/other-namespace"
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: podgate-system\nresources:\n  - ../deploy/overlays/cert-manager\ncomponents:\n%s\ntransformers:\n  - ../deploy/transformers\n' \
  "$components" >"$tree/all-components/kustomization.yaml"
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: policy-system\nresources:\n  - ../deploy/overlays/cert-manager\ncomponents:\n%s\ntransformers:\n  - ../deploy/transformers\n' \
  "$components" >"$tree/other-namespace/kustomization.yaml"
if ! command -v promtool >/dev/null 2>&1; then
  echo "validate-manifests: installing promtool (Debian package prometheus)" >&2
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  { DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y --no-install-recommends prometheus >/dev/null ||
    { "${apt_get[@]}" update >/dev/null &&
      DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y --no-install-recommends prometheus >/dev/null; }; } ||
    die "promtool is required: install the Debian package prometheus"
fi

podgate certs --service podgate --namespace podgate-system --out "$tree/certs" \
  >"$work/ca-bundle" 2>"$work/certs.log" || { cat "$work/certs.log" >&2; die "podgate certs failed"; }
[ -s "$tree/certs/ca-bundle.env" ] && [ -s "$work/ca-bundle" ] ||
  die "podgate certs wrote no certificates to $tree/certs"

overlays=(base overlays/dev overlays/cert-manager overlays/managed all-components other-namespace)
status=0
for overlay in "${overlays[@]}"; do
  name=${overlay//\//-}
  rendered="$work/$name.yaml"
  case $overlay in
    base | overlays/*) dir="$tree/deploy/$overlay" ;;
    *) dir="$tree/$overlay" ;;
  esac
  kubectl kustomize "$dir" >"$rendered"

  # Split the rendered stream: built-in kinds to validate, cert-manager kinds set aside.
  python3 - "$rendered" "$work/$name.builtin.yaml" "$work/$name.rules" <<'PY' || status=1
import os, re, sys
import yaml
src, dst, rules_dir = sys.argv[1], sys.argv[2], sys.argv[3]
docs = re.split(r"(?m)^---\n", open(src).read())
keep, skipped = [], []
CRD_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")
for doc in docs:
    if not doc.strip():
        continue
    api = re.search(r"(?m)^apiVersion: (\S+)", doc)
    kind = re.search(r"(?m)^kind: (\S+)", doc)
    name = re.search(r"(?m)^  name: (\S+)", doc)
    if api and api.group(1).startswith(CRD_GROUPS):
        # Well-formed YAML at least; the PrometheusRule's spec goes to promtool.
        obj = yaml.safe_load(doc)
        if not isinstance(obj, dict) or not isinstance(obj.get("spec"), dict):
            print(f"  {kind.group(1) if kind else '?'}: not a YAML mapping with a spec", file=sys.stderr)
            sys.exit(1)
        if obj.get("kind") == "PrometheusRule":
            os.makedirs(rules_dir, exist_ok=True)
            with open(os.path.join(rules_dir, obj["metadata"]["name"] + ".yaml"), "w") as f:
                yaml.safe_dump(obj["spec"], f)
        skipped.append(f"{api.group(1)} {kind.group(1) if kind else '?'}/{name.group(1) if name else '?'}")
    else:
        keep.append(doc)
open(dst, "w").write("---\n".join(keep))
for s in skipped:
    print(f"  not schema-checked (CRD; well-formed, shape checked in tests/deploy.rs): {s}")
PY
  if [ -d "$work/$name.rules" ]; then
    promtool check rules "$work/$name.rules"/*.yaml | sed "s|^|  |" || status=1
  fi

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
  if grep -q '^kind: ValidatingWebhookConfiguration' "$rendered"; then
    python3 scripts/check-match-conditions.py "$rendered" || status=1
  fi
done

[ "$status" -eq 0 ] || die "some manifests are not valid (see above)"
echo "validate-manifests: ok"
