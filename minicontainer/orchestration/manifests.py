"""Manifests: read multi-document YAML, and check every object before anything happens.

    kubectl apply -f FILE|DIR|-          https://kubernetes.io/docs/reference/using-api/
    PyPI kubernetes-validate: Kubernetes' own OpenAPI schemas as JSON Schema; the "strict"
    variant sets additionalProperties: false, so a misspelt field is an error, not a no-op.

Four checks, in this order, each problem one line "FILE: document N (Kind name): PATH: what":
  1. the schema: types, required fields, unknown fields (strict), unknown kinds;
  2. what minicontainer implements: a valid field it does not is named, never dropped
     ("spec.template.spec.hostNetwork: not supported by minicontainer");
  3. meaning: a Deployment's selector must match its template's labels;
  4. the machine: every image must exist in the image store (nothing is pulled).
Any problem → every line printed, exit 1, nothing created (like kubectl, whose errors exit 1).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import MinicontainerError

# (apiVersion, kind) minicontainer acts on.
KINDS = {("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Service"),
         ("v1", "PersistentVolumeClaim"), ("v1", "ConfigMap"), ("v1", "Secret"),
         ("autoscaling/v2", "HorizontalPodAutoscaler")}

# What is implemented, as a tree: {} a map of these keys, [x] a list of x, ANY: any content.
ANY = "any"
PROBE = {"exec": {"command": ANY}, "httpGet": {"path": ANY, "port": ANY, "scheme": ANY},
         "tcpSocket": {"port": ANY}, "initialDelaySeconds": ANY, "periodSeconds": ANY,
         "timeoutSeconds": ANY, "failureThreshold": ANY, "successThreshold": ANY}
CONTAINER = {
    "name": ANY, "image": ANY, "imagePullPolicy": ANY, "command": ANY, "args": ANY,
    "workingDir": ANY,
    "env": [{"name": ANY, "value": ANY,
             "valueFrom": {"configMapKeyRef": {"name": ANY, "key": ANY},
                           "secretKeyRef": {"name": ANY, "key": ANY}}}],
    "ports": [{"containerPort": ANY, "name": ANY, "protocol": ANY}],
    "resources": {"requests": {"cpu": ANY, "memory": ANY}, "limits": {"cpu": ANY, "memory": ANY}},
    "volumeMounts": [{"name": ANY, "mountPath": ANY, "readOnly": ANY}],
    "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
    "securityContext": {"runAsUser": ANY, "runAsGroup": ANY, "readOnlyRootFilesystem": ANY,
                        "capabilities": {"add": ANY, "drop": ANY},
                        "allowPrivilegeEscalation": ANY},
}
TERM = {"labelSelector": {"matchLabels": ANY}, "topologyKey": ANY}   # pod (anti-)affinity
POD_SPEC = {
    "containers": [CONTAINER], "initContainers": [CONTAINER], "restartPolicy": ANY,
    "terminationGracePeriodSeconds": ANY, "nodeName": ANY, "nodeSelector": ANY, "shareProcessNamespace": ANY,
    "tolerations": [{"key": ANY, "operator": ANY, "value": ANY, "effect": ANY}],
    "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [TERM],
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": ANY, "podAffinityTerm": TERM}]}},
    "volumes": [{"name": ANY, "emptyDir": {"medium": ANY, "sizeLimit": ANY},
                 "hostPath": {"path": ANY, "type": ANY},
                 "persistentVolumeClaim": {"claimName": ANY, "readOnly": ANY},
                 "configMap": {"name": ANY}, "secret": {"secretName": ANY}}],
}
METADATA = {"name": ANY, "namespace": ANY, "labels": ANY, "annotations": ANY}
TEMPLATE = {"metadata": METADATA, "spec": POD_SPEC}
SUPPORTED = {
    "Pod": {"spec": POD_SPEC},
    "Deployment": {"spec": {"replicas": ANY, "selector": {"matchLabels": ANY}, "template": TEMPLATE,
                            "revisionHistoryLimit": ANY,
                            "strategy": {"type": ANY, "rollingUpdate": {"maxSurge": ANY,
                                                                        "maxUnavailable": ANY}}}},
    "Service": {"spec": {"type": ANY, "selector": ANY, "clusterIP": ANY,
                         "ports": [{"name": ANY, "port": ANY, "targetPort": ANY,
                                    "protocol": ANY, "nodePort": ANY}]}},
    "PersistentVolumeClaim": {"spec": {"accessModes": ANY, "storageClassName": ANY,
                                       "resources": {"requests": {"storage": ANY}}}},
    "ConfigMap": {"data": ANY},
    "Secret": {"data": ANY, "stringData": ANY, "type": ANY},
    "HorizontalPodAutoscaler": {"spec": {
        "scaleTargetRef": {"apiVersion": ANY, "kind": ANY, "name": ANY},
        "minReplicas": ANY, "maxReplicas": ANY,
        "metrics": [{"type": ANY, "resource": {"name": ANY, "target": {"type": ANY,
                                                                       "averageUtilization": ANY}}}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": ANY},
                     "scaleUp": {"stabilizationWindowSeconds": ANY}}}},
}
# Values minicontainer knows (a valid value it does not implement is named like a field).
VALUES = {"spec.type": ("ClusterIP", "NodePort"), "spec.strategy.type": ("RollingUpdate", "Recreate"),
          "imagePullPolicy": ("IfNotPresent", "Never")}


class ManifestError(MinicontainerError):
    """Bad manifests: one line per problem; exit 1 like kubectl."""
    exit_code = 1


def load_documents(sources: list[str], stdin=None) -> list[tuple[str, int, object]]:
    """FILE, DIR (its *.yaml, *.yml, *.json, sorted) or - → [(source, document number, doc)]."""
    import yaml
    out = []
    for source in sources:
        if source == "-":
            files = [("-", (stdin or sys.stdin).read())]
        else:
            path = Path(source)
            if path.is_dir():
                names = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
                files = [(str(p), p.read_text()) for p in names]
            elif path.is_file():
                files = [(source, path.read_text())]
            else:
                raise ManifestError(f"error: the path \"{source}\" does not exist")
        for name, text in files:
            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f" line {mark.line + 1}" if mark else ""
                raise ManifestError(f"{name}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
            out += [(name, i, doc) for i, doc in enumerate(docs, start=1) if doc is not None]
    if not out:
        raise ManifestError("error: no objects passed to apply")
    return out


def check_documents(docs, image_exists) -> list[dict]:
    """Every check on every document; the objects, or ManifestError listing every problem."""
    problems = []
    for source, number, doc in docs:
        label = f"{source}: document {number}"
        if isinstance(doc, dict):
            meta = doc.get("metadata")              # any JSON value until the schema has spoken
            label += f" ({doc.get('kind', '?')} {meta.get('name', '?') if isinstance(meta, dict) else '?'})"
        found = check_document(doc, image_exists)
        problems += [f"{label}: {p}" for p in found]
    if problems:
        raise ManifestError("\n".join(problems))
    names = [(d["kind"], d["metadata"]["name"]) for _, _, d in docs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ManifestError("\n".join(f"{k} {n}: defined twice" for k, n in duplicates))
    return [doc for _, _, doc in docs]


def check_document(doc, image_exists) -> list[str]:
    if not isinstance(doc, dict):
        return ["not an object (a YAML mapping with apiVersion, kind, metadata)"]
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str):
            return [f"{key}: required"]
    schema_errors = check_schema(doc)
    if schema_errors:
        return schema_errors
    if (doc["apiVersion"], doc["kind"]) not in KINDS:
        return [f"kind {doc['kind']} ({doc['apiVersion']}): not supported by minicontainer "
                f"(it knows {', '.join(sorted(k for _, k in KINDS))})"]
    found = check_supported(doc, SUPPORTED[doc["kind"]], "")
    found += check_supported(doc.get("metadata", {}), METADATA, "metadata.")
    found += check_meaning(doc)
    found += check_images(doc, image_exists)
    return found


def check_schema(doc: dict) -> list[str]:
    """Kubernetes' JSON schema in strict mode: every problem, with its field path."""
    validator = schema_validator(doc["apiVersion"], doc["kind"])
    if validator is None:
        return [f"kind {doc['kind']} (apiVersion {doc['apiVersion']}): no such kind in "
                "Kubernetes (check kind and apiVersion)"]
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{dotted(e.absolute_path) or '(top)'}: {describe_error(e)}" for e in errors]


_VALIDATORS: dict = {}


def schema_validator(api_version: str, kind: str):
    import re
    import jsonschema
    from kubernetes_validate.utils import VersionNotSupportedError, latest_version, schema_contents
    from referencing import Registry, Resource
    version = latest_version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    if not re.fullmatch(r"[A-Za-z0-9]+", kind) or not re.fullmatch(r"[a-z0-9-]+", group):
        return None                         # no such schema file; and never a path elsewhere
    key = (group, kind)
    if key not in _VALIDATORS:
        try:
            schema = schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
        except (FileNotFoundError, OSError, VersionNotSupportedError):   # (a file it lacks)
            return None
        definitions = schema_contents(f"{folder}/_definitions.json", version)
        registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
        _VALIDATORS[key] = jsonschema.validators.Draft202012Validator(schema, registry=registry)
    return _VALIDATORS[key]


def describe_error(e) -> str:
    if e.validator == "additionalProperties":
        extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
        return f"unknown field {', '.join(repr(x) for x in extra)} (check its spelling)"
    if e.validator == "type":
        return f"{json.dumps(e.instance)} is not of type {' or '.join(as_list(e.validator_value))}"
    if e.validator == "required":
        return e.message.replace("is a required property", "is required")
    return e.message


def as_list(value) -> list:
    return [v for v in (value if isinstance(value, list) else [value]) if v != "null"]


def dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_supported(value, allowed, path: str) -> list[str]:
    """Fields outside the SUPPORTED tree: one line each, naming the field."""
    if allowed == ANY:
        return []
    if isinstance(allowed, list):
        if not isinstance(value, list):
            return []
        return [p for i, item in enumerate(value)
                for p in check_supported(item, allowed[0], f"{path.rstrip('.')}[{i}].")]
    if not isinstance(value, dict):
        return []
    found = []
    for key, sub in value.items():
        if key in ("apiVersion", "kind", "metadata", "status") and not path:
            continue
        if key not in allowed:
            found.append(f"{path}{key}: not supported by minicontainer")
            continue
        for suffix, values in VALUES.items():
            if f"{path}{key}".endswith(suffix) and isinstance(sub, str) and sub not in values:
                found.append(f"{path}{key}: {sub!r} not supported by minicontainer "
                             f"(use {' or '.join(values)})")
        found += check_supported(sub, allowed[key], f"{path}{key}.")
    return found


def check_meaning(doc: dict) -> list[str]:
    found = []
    if doc["kind"] == "Deployment":
        spec = doc.get("spec", {})
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not wanted or any(labels.get(k) != v for k, v in wanted.items()):
            found.append(f"spec.template.metadata.labels: {labels} does not match "
                         f"spec.selector.matchLabels {wanted} (`selector` does not match template `labels`)")
    if doc["kind"] == "HorizontalPodAutoscaler":
        for i, m in enumerate(doc["spec"].get("metrics") or []):
            res = m.get("resource") or {}
            if m.get("type") != "Resource" or res.get("name") != "cpu" or \
                    (res.get("target") or {}).get("type") != "Utilization":
                found.append(f"spec.metrics[{i}]: only type Resource, name cpu, target type "
                             "Utilization is supported by minicontainer")
    return found


def pod_spec_of(doc: dict) -> dict | None:
    if doc["kind"] == "Pod":
        return doc.get("spec") or {}
    if doc["kind"] == "Deployment":
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def check_images(doc: dict, image_exists) -> list[str]:
    spec = pod_spec_of(doc)
    if spec is None:
        return []
    prefix = "spec." if doc["kind"] == "Pod" else "spec.template.spec."
    found = []
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if c.get("image") and not image_exists(c["image"]):
                found.append(f"{prefix}{group}[{i}].image: image {c['image']!r} does not exist here "
                             "(minicontainer pulls nothing: `minicontainer image ls`, "
                             "`minicontainer image import`)")
    return found
