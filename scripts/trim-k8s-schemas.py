#!/usr/bin/env python3
"""Extracts the official Kubernetes schemas Atrium's tests validate against, with every
definition they reference, into one file committed beside the tests.

Sources (read-only): core/v1 and apps/v1 from the OpenAPI v3 documents; networking/v1 and
rbac/v1 (which have no v3 document there) from the whole swagger. References are rewritten to
`#/definitions/NAME`; nothing else changes.

    scripts/trim-k8s-schemas.py ../shared/k8s-openapi > Tests/AtriumKubernetesTests/Schemas/k8s-schemas.json
"""
import json
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/k8s-openapi"
v3 = {}
for name in ("api__v1_openapi.json", "apis__apps__v1_openapi.json"):
    v3.update(json.load(open(f"{src}/{name}"))["components"]["schemas"])
swagger = json.load(open(f"{src}/swagger.json"))["definitions"]

roots = [
    "io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.PersistentVolumeClaim",
    "io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.Event", "io.k8s.api.core.v1.Namespace", "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.core.v1.ConfigMap", "io.k8s.api.core.v1.Secret", "io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.networking.v1.NetworkPolicy",
    "io.k8s.api.rbac.v1.Role", "io.k8s.api.rbac.v1.RoleBinding", "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
]


def rewrite(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "description":
                continue
            if k == "$ref":
                v = "#/definitions/" + v.rsplit("/", 1)[-1]
            out[k] = rewrite(v)
        return out
    if isinstance(node, list):
        return [rewrite(v) for v in node]
    return node


out = {}
todo = list(roots)
while todo:
    name = todo.pop()
    if name in out:
        continue
    schema = v3.get(name) or swagger[name]
    out[name] = rewrite(schema)
    text = json.dumps(out[name])
    for part in text.split('"#/definitions/')[1:]:
        todo.append(part.split('"', 1)[0])
json.dump({"source": "kubernetes OpenAPI v3 (core/v1, apps/v1) and swagger (others), trimmed by scripts/trim-k8s-schemas.py",
           "definitions": dict(sorted(out.items()))}, sys.stdout, indent=0, sort_keys=True)
