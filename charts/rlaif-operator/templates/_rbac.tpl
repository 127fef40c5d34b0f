{{- /*
The operator's permissions, one rule per line. tests/integration/test_rbac_audit.py records every API
call the operator makes during the integration suite and checks these rules grant exactly those: no
more, no less. A new call is one more line here.

namespacedRules: what the operator does inside a watched namespace. Children (ConfigMap, Service,
NetworkPolicy, Job, stage resources) carry ownerReferences with blockOwnerDeletion, which needs
`update` on the owner's finalizers where the OwnerReferencesPermissionEnforcement plugin runs
(OpenShift). Secrets: `get` only, to name a missing Secret or key before a Job starts (never list or
watch: no Secret is cached). Every `create` comes with `get` of the same resource: a create that
answers 409 (already there, e.g. after a restart) reads the existing object. Jobs: `patch` removes
the result finalizer once the status holds the result, `delete` restarts a stage (rlaif.dev/restart)
or a failed multi-node group. Events: `list` reads the kubelet's FailedMount and the Job controller's
FailedCreate Events to name why pods cannot start. pods/log: `get` reads a running stage's progress
from its rank-0 pod's log tail (status.progress) and a finished stage's last lines (status.logTail).
*/}}
{{- define "rlaif-operator.namespacedRules" -}}
- {apiGroups: [rlaif.dev], resources: [preferencelabeljobs, rewardmodelruns, policyrlruns], verbs: [get, list, watch, create]}
- {apiGroups: [rlaif.dev], resources: [rlaifpipelines], verbs: [list, watch]}
- {apiGroups: [rlaif.dev], resources: [preferencelabeljobs/status, rewardmodelruns/status, policyrlruns/status, rlaifpipelines/status], verbs: [patch]}
- {apiGroups: [rlaif.dev], resources: [preferencelabeljobs/finalizers, rewardmodelruns/finalizers, policyrlruns/finalizers, rlaifpipelines/finalizers], verbs: [update]}
- {apiGroups: [batch], resources: [jobs], verbs: [get, list, watch, create, patch, delete]}
- {apiGroups: [""], resources: [configmaps, services], verbs: [get, create]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [get, create]}
- {apiGroups: [""], resources: [pods], verbs: [list]}
- {apiGroups: [""], resources: [pods/log], verbs: [get]}
- {apiGroups: [""], resources: [secrets], verbs: [get]}
- {apiGroups: [""], resources: [events], verbs: [create, list]}
{{- end -}}

{{- /* Cluster-scoped: kopf watches CRDs to notice its kinds being (re)installed. Only with a
ClusterRole, i.e. when the operator watches every namespace or namespace patterns. */}}
{{- define "rlaif-operator.clusterRules" -}}
- {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [list, watch]}
{{- end -}}

{{- /* Namespace patterns (globs): kopf lists and watches namespaces to find the matching ones. */}}
{{- define "rlaif-operator.namespacePatternRules" -}}
- {apiGroups: [""], resources: [namespaces], verbs: [list, watch]}
{{- end -}}

{{- /* "all" (no namespaces), "patterns" (any glob) or "names" (exact names: Roles only). */}}
{{- define "rlaif-operator.watchMode" -}}
{{- $ns := .Values.operator.namespaces | default list -}}
{{- if not $ns -}}all
{{- else if regexMatch "[*?\\[\\]!]" (join "," $ns) -}}patterns
{{- else -}}names
{{- end -}}
{{- end -}}
