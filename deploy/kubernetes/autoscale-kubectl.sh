#!/bin/sh
# The ringkv autoscaler's provisioner on Kubernetes:
#   ringkv start --autoscale command:/opt/ringkv/deploy/kubernetes/autoscale-kubectl.sh --scale-in-victim provisioner
# The autoscaler runs it as
#   autoscale-kubectl.sh scale-out <target-node-count>
#   autoscale-kubectl.sh scale-in  <target-node-count>
# and it sets the StatefulSet's replicas. On scale-in Kubernetes removes the highest ordinal,
# whose preStop hook (ringkv autoscale prestop) decommissions it first. Needs kubectl and a
# service account allowed to scale the StatefulSet (rbac.yaml).
set -eu
action="${1:?action}"
target="${2:?target node count}"
statefulset="${RINGKV_STATEFULSET:-ringkv}"
namespace="${POD_NAMESPACE:-$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace 2>/dev/null || echo default)}"
case "$action" in
  scale-out|scale-in)
    exec kubectl --namespace "$namespace" scale statefulset "$statefulset" --replicas="$target"
    ;;
  *)
    echo "autoscale-kubectl.sh: unknown action $action" >&2
    exit 2
    ;;
esac
