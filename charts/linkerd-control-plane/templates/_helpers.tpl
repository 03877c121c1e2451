{{/*
Helpers of the control-plane chart. Their names start with "cp." so they
cannot clash with the partials library's ("partials.*").
*/}}

{{/* The control plane's namespace: the release's, which must be controllerNamespace. */}}
{{- define "cp.namespace" -}}
{{- if ne .Release.Namespace .Values.controllerNamespace -}}
{{- fail (printf "the release namespace %q differs from controllerNamespace %q: set controllerNamespace to the namespace you install into" .Release.Namespace .Values.controllerNamespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* The identity trust domain: identityTrustDomain, else clusterDomain. */}}
{{- define "cp.trustDomain" -}}
{{- default .Values.clusterDomain .Values.identityTrustDomain -}}
{{- end -}}

{{/* The control plane's version: linkerdVersion, else the chart's appVersion. */}}
{{- define "cp.version" -}}
{{- default .Chart.AppVersion .Values.linkerdVersion -}}
{{- end -}}

{{/* The controller image reference. */}}
{{- define "cp.controllerImage" -}}
{{- printf "%s:%s" .Values.controllerImage (default (include "cp.version" .) .Values.controllerImageVersion) -}}
{{- end -}}

{{/* Path of the controller binary inside the controller image. */}}
{{- define "cp.controllerBinary" -}}/usr/lib/linkerd/linkerd-controller{{- end -}}

{{/*
Labels of every control-plane resource of a component. Call with
(dict "root" . "component" "identity").
*/}}
{{- define "cp.labels" -}}
linkerd.io/control-plane-component: {{ .component }}
linkerd.io/control-plane-ns: {{ include "cp.namespace" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The selector of a component's pods. Call with
(dict "root" . "component" "identity" "deployment" "linkerd-identity").
*/}}
{{- define "cp.selector" -}}
linkerd.io/control-plane-component: {{ .component }}
linkerd.io/control-plane-ns: {{ include "cp.namespace" .root }}
linkerd.io/proxy-deployment: {{ .deployment }}
{{- end -}}

{{/*
Kubernetes resources from Linkerd-style values
({cpu: {request, limit}, memory: {...}, ephemeral-storage: {...}}); empty
strings are left out.
*/}}
{{- define "cp.resources" -}}
{{- $requests := dict -}}
{{- $limits := dict -}}
{{- range $name, $r := . -}}
{{- if kindIs "map" $r -}}
{{- with $r.request }}{{ $_ := set $requests $name (toString .) }}{{ end -}}
{{- with $r.limit }}{{ $_ := set $limits $name (toString .) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if $requests }}
requests:
  {{- toYaml $requests | nindent 2 }}
{{- end }}
{{- if $limits }}
limits:
  {{- toYaml $limits | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Security context of the controller containers. */}}
{{- define "cp.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.controllerUID }}
runAsGroup: {{ .Values.controllerGID }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Scheduling of a component's pods: node selector, tolerations, priority
class and, with enablePodAntiAffinity, one replica per node (and spread
over zones when possible). Call with (dict "root" . "component" "identity").
*/}}
{{- define "cp.scheduling" -}}
{{- $root := .root -}}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if $root.Values.enablePodAntiAffinity }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            linkerd.io/control-plane-component: {{ .component }}
            linkerd.io/control-plane-ns: {{ include "cp.namespace" $root }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: topology.kubernetes.io/zone
          labelSelector:
            matchLabels:
              linkerd.io/control-plane-component: {{ .component }}
              linkerd.io/control-plane-ns: {{ include "cp.namespace" $root }}
{{- end }}
{{- end -}}

{{/* The rollout strategy of the control-plane deployments. */}}
{{- define "cp.strategy" -}}
{{- with .Values.deploymentStrategy }}
strategy:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Annotations of a control-plane pod. */}}
{{- define "cp.podAnnotations" -}}
linkerd.io/created-by: {{ .Values.cliVersion | default (printf "linkerd/helm %s" (include "cp.version" .)) }}
{{ include "partials.proxy.annotations" . }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A PEM value that must be given: its (trimmed) content, or a failure naming
the value. Call with (list "identityTrustAnchorsPEM" .Values.identityTrustAnchorsPEM).
*/}}
{{- define "cp.requiredPEM" -}}
{{- $name := index . 0 -}}
{{- $pem := index . 1 | default "" | trim -}}
{{- if not (contains "-----BEGIN" $pem) -}}
{{- fail (printf "%s must be a PEM value (linkerd install generates it; with Helm, set it from your certificate files)" $name) -}}
{{- end -}}
{{- $pem -}}
{{- end -}}
