#!/usr/bin/env python3
"""Evaluates the webhooks' matchConditions (CEL) in rendered manifests.

Usage: check-match-conditions.py RENDERED.yaml...

For every MutatingWebhookConfiguration / ValidatingWebhookConfiguration webhook, all its
matchConditions must be true (the webhook is called) for an ordinary Pod, a Pod without
annotations, an object without metadata, and a null object (what DELETE sends), and at least one
must be false (the webhook is skipped) for a static Pod's mirror pod. A condition that errors
fails the check: the apiserver would apply the webhook's failurePolicy to it.

The evaluator is cel-python, a spec implementation (Kubernetes embeds cel-go); the conditions
use only core CEL (has, in, ==, !, ||), where both agree.
"""
import sys

import celpy
import yaml

MIRROR = "kubernetes.io/config.mirror"
CASES = {
    "pod with annotations": ({"metadata": {"name": "p", "annotations": {"a": "b"}}}, True),
    "pod without annotations": ({"metadata": {"name": "p"}}, True),
    "object without metadata": ({"kind": "Pod"}, True),
    "null object (DELETE)": (None, True),
    "mirror pod": ({"metadata": {"name": "p", "annotations": {MIRROR: "abc"}}}, False),
}


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
                programs = []
                for cond in hook.get("matchConditions") or []:
                    try:
                        programs.append((cond["name"], env.program(env.compile(cond["expression"]))))
                    except Exception as e:  # noqa: BLE001 - report every compile error
                        failures.append(f"{path}: {hook['name']}/{cond['name']}: does not compile: {e}")
                if not programs:
                    failures.append(f"{path}: {hook['name']}: no matchConditions")
                    continue
                for case, (obj, want_called) in CASES.items():
                    activation = {
                        "object": celpy.json_to_cel(obj),
                        "oldObject": celpy.json_to_cel(None),
                        "request": celpy.json_to_cel({"operation": "CREATE"}),
                    }
                    results = []
                    for name, prog in programs:
                        try:
                            value = prog.evaluate(activation)
                        except Exception as e:  # noqa: BLE001
                            failures.append(f"{path}: {hook['name']}/{name}: {case}: error {e}")
                            value = None
                        else:
                            if not isinstance(value, celpy.celtypes.BoolType):
                                failures.append(
                                    f"{path}: {hook['name']}/{name}: {case}: not a bool: {value!r}"
                                )
                        results.append(value is not None and bool(value))
                    called = all(results)
                    checked += 1
                    if called != want_called:
                        verb = "called" if want_called else "skipped"
                        failures.append(f"{path}: {hook['name']}: {case}: should be {verb}")
    if checked == 0:
        failures.append("no webhook matchConditions found")
    for failure in failures:
        print(f"  matchConditions: {failure}", file=sys.stderr)
    print(f"  matchConditions: {checked} webhook/case pairs evaluated, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
