#!/usr/bin/python3
"""The Helm chart rendered by a real helm (`helm template`, `helm lint --strict`): the
Deployments' HTTP port agrees with the ConfigMap, the admin token reaches every worker from the
named Secret (and nothing puts it in plain text), and the NetworkPolicy admits only the listed
peers to the HTTP port of exactly the release's pods, with egress left alone.

usage: test_chart.py SOURCE_DIR   (helm from $HVS_HELM, PATH, or scripts/get-helm.sh's cache;
                                   exit 77 = skipped when there is none)
"""
import os
import shutil
import subprocess
import sys

import yaml

src = sys.argv[1]
chart = os.path.join(src, "helm", "hvacstream")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def find_helm():
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                         "hvacstream", "helm")
    for cand in (os.environ.get("HVS_HELM"), shutil.which("helm"), cache):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


helm = find_helm()
if not helm:
    print("SKIP: no helm binary (set HVS_HELM, put helm on PATH, or run scripts/get-helm.sh)")
    sys.exit(77)


def render(*sets):
    args = [helm, "template", "rel", chart]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def envs(dep):
    return {e["name"]: e for c in dep["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])}


lint = subprocess.run([helm, "lint", "--strict", chart], capture_output=True, text=True)
check(lint.returncode == 0, "helm lint --strict:\n" + lint.stdout + lint.stderr)

docs = render()
deps = kinds(docs, "Deployment")
check(sorted(d["metadata"]["name"] for d in deps) ==
      ["rel-aggregator", "rel-alerter", "rel-features", "rel-forecaster", "rel-refresher",
       "rel-scorer", "rel-trainer", "rel-weather"],
      "one Deployment a worker")
cm = kinds(docs, "ConfigMap")[0]["data"]
check(cm.get("HVS_HTTP_PORT") == "8080" and cm.get("HVS_HTTP_BIND_ANY") == "true",
      "workers listen on 8080, all interfaces: %s" % cm)
check("HVS_HTTP_ADMIN_TOKEN" not in cm, "no token in the ConfigMap")
for d in deps:
    name = d["metadata"]["name"]
    ports = [p for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
    check(ports == [{"name": "http", "containerPort": 8080}], "%s ports %s" % (name, ports))
    check("HVS_HTTP_ADMIN_TOKEN" not in envs(d), "%s: no token unless a Secret is named" % name)

# The NetworkPolicy: on by default, ingress only, the HTTP port, the default peers.
nps = kinds(docs, "NetworkPolicy")
check(len(nps) == 1, "one NetworkPolicy by default")
if nps:
    spec = nps[0]["spec"]
    check(spec["policyTypes"] == ["Ingress"], "egress untouched: %s" % spec["policyTypes"])
    sel = spec["podSelector"]["matchLabels"]
    for d in deps:
        labels = d["spec"]["template"]["metadata"]["labels"]
        check(all(labels.get(k) == v for k, v in sel.items()),
              "%s's pods selected by %s" % (d["metadata"]["name"], sel))
    check(len(spec["ingress"]) == 1, "one ingress rule")
    rule = spec["ingress"][0]
    check(rule["ports"] == [{"protocol": "TCP", "port": "http"}], "HTTP port only: %s" % rule)
    check(rule["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
        "Prometheus in monitoring: %s" % rule["from"])
    # the policy must not catch another release's pods
    check(sel.get("app.kubernetes.io/instance") == "rel", "selects this release only: %s" % sel)

# Switches: no peers admits no one; disabled renders none.
np = kinds(render("networkPolicy.httpFrom=null"), "NetworkPolicy")
check(len(np) == 1 and np[0]["spec"]["ingress"] == [], "empty list: no ingress allowed")
check(kinds(render("networkPolicy.enabled=false"), "NetworkPolicy") == [], "disabled: none")
np = kinds(render("networkPolicy.httpFrom[0].ipBlock.cidr=10.0.0.0/16"), "NetworkPolicy")
check(np and np[0]["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
      "peers are passed through as written")

# The admin token from a named Secret reaches every worker, by reference only.
for d in kinds(render("adminTokenSecret.name=hvs-admin"), "Deployment"):
    e = envs(d).get("HVS_HTTP_ADMIN_TOKEN", {})
    check(e.get("valueFrom") == {"secretKeyRef": {"name": "hvs-admin",
                                                  "key": "HVS_HTTP_ADMIN_TOKEN"}}
          and "value" not in e, "%s token env %s" % (d["metadata"]["name"], e))
d = kinds(render("adminTokenSecret.name=s", "adminTokenSecret.key=token"), "Deployment")[0]
check(envs(d)["HVS_HTTP_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "token"},
      "the key is configurable")
# ... or from existingSecret's HVS_* keys, through envFrom
d = kinds(render("existingSecret=hvs-secrets"), "Deployment")[0]
froms = d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
check({"secretRef": {"name": "hvs-secrets"}} in froms, "existingSecret in envFrom: %s" % froms)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
