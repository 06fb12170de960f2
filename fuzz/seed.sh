#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repository's AdmissionReview fixtures
# (tests/fixtures/reviews), an extra corpus when one exists ($PODGATE_EXTRA_FIXTURES, else
# ../shared/fixtures), the shipped policies and a few hand-written requests. Idempotent:
# seeds are named by content, and what libFuzzer added to the corpus is kept.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
extra="${PODGATE_EXTRA_FIXTURES:-$root/../shared/fixtures}"
review="$here/corpus/review"
policy="$here/corpus/policy_file"
mkdir -p "$review" "$policy"

# Writes stdin to $1/seed-<sha1 of the content>.
put() {
    local dir="$1" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    mv "$tmp" "$dir/seed-$(sha1sum "$tmp" | cut -c1-16)"
}

fixture_dirs=("$root/tests/fixtures/reviews")
if [ -d "$extra" ]; then
    fixture_dirs+=("$extra")
else
    echo "seed.sh: no extra fixture corpus at $extra; seeding the repository's own" >&2
fi
for dir in "${fixture_dirs[@]}"; do
    for f in "$dir"/*.json; do
        for version in admission.k8s.io/v1 admission.k8s.io/v1beta1; do
            if grep -q '"request"[[:space:]]*:' "$f"; then
                # A whole AdmissionReview envelope.
                sed "s#\"admission.k8s.io/v1\"#\"$version\"#" "$f" | put "$review"
            else
                # A bare request stanza: wrap it.
                { printf '{"apiVersion":"%s","kind":"AdmissionReview","request":' "$version"
                  cat "$f"
                  printf '}\n'; } | put "$review"
            fi
        done
    done
done

# Hand-written requests for what the fixtures lack: opted-in Pods with conflicting
# hostAliases and unknown fields, a pods/ephemeralcontainers update, a CronJob template.
put "$review" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"team-a","operation":"CREATE","userInfo":{"username":"alice","groups":["dev"]},"object":{"apiVersion":"v1","kind":"Pod","zzFuture":1,"metadata":{"name":"p","labels":{"podgate.dev/inject-host-aliases":"true","fuzz":"deny"}},"spec":{"zzFutureSpec":{"a/b":"~"},"hostAliases":[{"ip":"10.9.9.9","hostnames":["foo.remote","db"]},{"ip":"fd00:0::1"},{"ip":"10.1.2.3","hostnames":[]}],"initContainers":[{"name":"init","image":"busybox","command":["sh","-c","echo 10.0.0.1 db >> /etc/hosts"]}],"containers":[{"name":"app","image":"nginx:latest","imagePullPolicy":"IfNotPresent","zzFutureContainer":[1],"volumeMounts":[{"name":"h","mountPath":"/etc/hosts"}],"securityContext":{"privileged":true,"capabilities":{"add":["NET_ADMIN"]}},"ports":[{"containerPort":80,"hostPort":80}]}],"volumes":[{"name":"h","hostPath":{"path":"/etc"}}],"hostNetwork":true,"hostPID":true}}}}
EOF
put "$review" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","kind":{"group":"","version":"v1","kind":"Pod"},"subResource":"ephemeralcontainers","namespace":"default","operation":"UPDATE","userInfo":{"username":"bob"},"object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"nginx"}],"ephemeralContainers":[{"name":"old","image":"busybox"},{"name":"debug","image":"busybox","command":["sh","-c","tee -a /etc/hosts"],"securityContext":{"privileged":true}}]}},"oldObject":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"nginx"}],"ephemeralContainers":[{"name":"old","image":"busybox"}]}}}}
EOF
put "$review" <<'EOF'
{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u3","kind":{"group":"batch","version":"v1","kind":"CronJob"},"namespace":"default","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:cronjob-controller"},"dryRun":true,"object":{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"metadata":{"labels":{"podgate.dev/inject-host-aliases":"true"}},"spec":{"hostAliases":[{"ip":"10.1.2.3","hostnames":["v6.remote"]}],"containers":[{"name":"c","image":"registry:5000/x/y:dev","args":["-c","cat <<E >> /etc/hosts\n1.2.3.4 h\nE"]}]}}}}}}}}
EOF

# Policies: the shipped ones and the fuzz target's extras.
for f in "$root"/policies/*.yaml; do
    put "$policy" <"$f"
done
sed -n '/^const EXTRA: &str = r#"$/,/^"#;$/p' "$here/fuzz_targets/review.rs" | sed '1d;$d' | put "$policy"

echo "corpus: $(ls "$review" | wc -l) review and $(ls "$policy" | wc -l) policy_file inputs"
