#!/usr/bin/env python3
"""Evaluates the webhooks' matchConditions (CEL) in rendered manifests.

Usage: check-match-conditions.py RENDERED.yaml...

Each case below is an admission request; it is run against every MutatingWebhookConfiguration /
ValidatingWebhookConfiguration webhook whose rules match it (operation, group, resource,
subresource), and the webhook must be called (all conditions true) or skipped (one false) as
the case says. A condition that errors or is not a bool fails the check: the apiserver would
apply the webhook's failurePolicy to it.

The evaluator is cel-python, a CEL spec implementation (Kubernetes embeds cel-go); the
conditions use only core CEL (has, in, ==, !=, !, ||, &&), where both agree.
"""
import copy
import sys

import celpy
import yaml

MIRROR = "kubernetes.io/config.mirror"


def pod(annotations=None, image="nginx:1.27"):
    meta = {"name": "p", "namespace": "team"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": image}]}}


def deployment(replicas=1, image="nginx:1.27"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "team"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def cronjob(schedule="* * * * *", image="nginx:1.27"):
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "team"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": image}]}}}}}}


def with_finalizer(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"]["finalizers"] = ["foregroundDeletion"]
    return obj


USER = {"username": "alice", "groups": ["devs", "system:authenticated"]}
NODE = {"username": "system:node:worker-1", "groups": ["system:nodes", "system:authenticated"]}


def request(operation, group, resource, sub="", user=USER):
    req = {
        "operation": operation,
        "resource": {"group": group, "version": "v1", "resource": resource},
        "userInfo": user,
    }
    if sub:
        req["subResource"] = sub
    return req


# (name, request, object, oldObject, called)
CASES = [
    ("pod create", request("CREATE", "", "pods"), pod({"a": "b"}), None, True),
    ("pod create without annotations", request("CREATE", "", "pods"), pod(), None, True),
    ("pod create without metadata", request("CREATE", "", "pods"), {"kind": "Pod"}, None, True),
    ("mirror pod create by a node", request("CREATE", "", "pods", user=NODE), pod({MIRROR: "abc"}),
     None, False),
    ("mirror annotation from a user", request("CREATE", "", "pods"), pod({MIRROR: "abc"}), None, True),
    ("mirror annotation from a node-named user outside system:nodes",
     request("CREATE", "", "pods", user={"username": "system:node:x", "groups": ["g"]}),
     pod({MIRROR: "abc"}), None, True),
    ("pod create by a node", request("CREATE", "", "pods", user=NODE), pod(), None, True),
    ("kubectl debug (ephemeral container)", request("UPDATE", "", "pods", "ephemeralcontainers"),
     pod(), pod(), True),
    ("deployment create", request("CREATE", "apps", "deployments"), deployment(), None, True),
    ("deployment image change", request("UPDATE", "apps", "deployments"),
     deployment(image="nginx:latest"), deployment(), True),
    ("deployment scale (spec.replicas)", request("UPDATE", "apps", "deployments"),
     deployment(replicas=5), deployment(), False),
    ("deployment finalizer added (foreground delete)", request("UPDATE", "apps", "deployments"),
     with_finalizer(deployment()), deployment(), False),
    ("replicaset scaled down by the deployment controller", request("UPDATE", "apps", "replicasets"),
     deployment(replicas=0), deployment(replicas=3), False),
    ("cronjob pod template change", request("UPDATE", "batch", "cronjobs"),
     cronjob(image="nginx:latest"), cronjob(), True),
    ("cronjob schedule change", request("UPDATE", "batch", "cronjobs"),
     cronjob(schedule="0 * * * *"), cronjob(), False),
]


def rule_matches(rule, req):
    resource = req["resource"]["resource"]
    if req.get("subResource"):
        resource += "/" + req["subResource"]
    return (
        (req["operation"] in rule.get("operations", []) or "*" in rule.get("operations", []))
        and (req["resource"]["group"] in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
        and resource in rule.get("resources", [])
    )


def main(paths):
    env = celpy.Environment()
    checked, failures = 0, []
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            if doc.get("kind") not in (
                "MutatingWebhookConfiguration",
                "ValidatingWebhookConfiguration",
            ):
                continue
            for hook in doc.get("webhooks") or []:
                where = f"{path}: {hook['name']}"
                programs = []
                for cond in hook.get("matchConditions") or []:
                    try:
                        programs.append((cond["name"], env.program(env.compile(cond["expression"]))))
                    except Exception as e:  # noqa: BLE001 - report every compile error
                        failures.append(f"{where}/{cond['name']}: does not compile: {e}")
                covers_cases = any(
                    rule_matches(r, req) for _, req, _, _, _ in CASES for r in hook.get("rules") or []
                )
                if not covers_cases:
                    # Not a Pod/workload webhook (policies.podgate.dev: podgate's ConfigMaps).
                    continue
                if not programs:
                    failures.append(f"{where}: no matchConditions")
                    continue
                for case, req, obj, old, want_called in CASES:
                    if not any(rule_matches(r, req) for r in hook.get("rules") or []):
                        continue
                    activation = {
                        "object": celpy.json_to_cel(obj),
                        "oldObject": celpy.json_to_cel(old),
                        "request": celpy.json_to_cel(req),
                    }
                    called = True
                    for name, prog in programs:
                        try:
                            value = prog.evaluate(activation)
                        except Exception as e:  # noqa: BLE001
                            failures.append(f"{where}/{name}: {case}: error {e}")
                            continue
                        if not isinstance(value, celpy.celtypes.BoolType):
                            failures.append(f"{where}/{name}: {case}: not a bool: {value!r}")
                            continue
                        called = called and bool(value)
                    checked += 1
                    if called != want_called:
                        verb = "called" if want_called else "skipped"
                        failures.append(f"{where}: {case}: should be {verb}")
    if checked == 0:
        failures.append("no webhook matched any case")
    for failure in failures:
        print(f"  matchConditions: {failure}", file=sys.stderr)
    print(f"  matchConditions: {checked} webhook/case pairs evaluated, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
