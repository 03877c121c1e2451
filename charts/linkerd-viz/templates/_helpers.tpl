{{/*
Helpers of the linkerd-viz chart; their names start with "viz.".
*/}}

{{/* The extension's version: linkerdVersion, else the chart's appVersion. */}}
{{- define "viz.version" -}}
{{- default .Chart.AppVersion .Values.linkerdVersion -}}
{{- end -}}

{{/* The controller image reference (metrics-api, web). */}}
{{- define "viz.controllerImage" -}}
{{- printf "%s:%s" .Values.controllerImage (default (include "viz.version" .) .Values.controllerImageVersion) -}}
{{- end -}}

{{/* Path of the controller binary inside the controller image. */}}
{{- define "viz.controllerBinary" -}}/usr/lib/linkerd/linkerd-controller{{- end -}}

{{/* Whether the chart deploys its own Prometheus: "true" or "". */}}
{{- define "viz.prometheusEnabled" -}}
{{- if and .Values.prometheus.enabled (not .Values.prometheusUrl) -}}true{{- end -}}
{{- end -}}

{{/* The URL the metrics API queries Prometheus at. */}}
{{- define "viz.prometheusUrl" -}}
{{- if .Values.prometheusUrl -}}
{{- .Values.prometheusUrl -}}
{{- else if .Values.prometheus.enabled -}}
{{- printf "http://prometheus.%s.svc.%s:9090" .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- fail "prometheus.enabled is false and prometheusUrl is empty: the metrics API needs a Prometheus (set prometheusUrl to your own)" -}}
{{- end -}}
{{- end -}}

{{/*
Labels of every resource of a component. Call with
(dict "root" . "component" "metrics-api").
*/}}
{{- define "viz.labels" -}}
linkerd.io/extension: viz
component: {{ .component }}
namespace: {{ .root.Release.Namespace }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The selector of a component's pods. Call with (dict "root" . "component" "web"). */}}
{{- define "viz.selector" -}}
linkerd.io/extension: viz
component: {{ .component }}
namespace: {{ .root.Release.Namespace }}
{{- end -}}

{{/* The linkerd.io/created-by annotation. */}}
{{- define "viz.createdBy" -}}
linkerd.io/created-by: {{ .Values.cliVersion | default (printf "linkerd/helm %s" (include "viz.version" .)) }}
{{- end -}}

{{/*
Annotations of a viz pod: meshed by the control plane's injector, with the
API server's ports (and extra) bypassing the proxy. Call with
(dict "root" . "skipOutbound" "4191" "extra" .Values.prometheus.podAnnotations).
*/}}
{{- define "viz.podAnnotations" -}}
{{ include "viz.createdBy" .root }}
linkerd.io/inject: enabled
{{- $skip := list -}}
{{- with .skipOutbound }}{{ $skip = append $skip . }}{{ end -}}
{{- with .root.Values.kubeAPIServerPorts }}{{ $skip = append $skip . }}{{ end }}
{{- with $skip }}
config.linkerd.io/skip-outbound-ports: {{ join "," . | quote }}
{{- end }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a viz pod. Call with (dict "root" . "component" "web"). */}}
{{- define "viz.podLabels" -}}
{{ include "viz.selector" . }}
{{- with .root.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Kubernetes resources from Linkerd-style values
({cpu: {request, limit}, memory: {...}}); empty strings are left out.
*/}}
{{- define "viz.resources" -}}
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

{{/* Security context of a container running as uid/gid. Call with (list UID GID). */}}
{{- define "viz.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ index . 0 }}
runAsGroup: {{ index . 1 }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Scheduling of a component's pods: node selector, tolerations, priority
class, pull secrets and, with enablePodAntiAffinity, one replica per node
(spread over zones when possible). Call with (dict "root" . "component" "web").
*/}}
{{- define "viz.scheduling" -}}
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
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $root.Values.enablePodAntiAffinity }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "viz.selector" . | nindent 12 }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: topology.kubernetes.io/zone
          labelSelector:
            matchLabels:
              {{- include "viz.selector" . | nindent 14 }}
{{- end }}
{{- end -}}

{{/* The mesh's identity trust domain: identityTrustDomain, else clusterDomain. */}}
{{- define "viz.trustDomain" -}}
{{- .Values.identityTrustDomain | default .Values.clusterDomain -}}
{{- end -}}

{{/* The tap service's identity, the proxies' LINKERD2_PROXY_TAP_SVC_NAME. */}}
{{- define "viz.tapIdentity" -}}
{{- printf "tap.%s.serviceaccount.identity.%s.%s" .Release.Namespace .Values.linkerdNamespace (include "viz.trustDomain" .) -}}
{{- end -}}

{{/*
The tap-injector's serving certificate and CA bundle into .out (keys crt,
key, caBundle): tapInjector.crtPEM/keyPEM/caBundle when given, else
generated (a CA made for it, so that the Secret and the webhook
configuration rendered together match). Call with (dict "root" . "out" $d).
*/}}
{{- define "viz.tapInjectorTLS" -}}
{{- $v := .root.Values.tapInjector -}}
{{- $crt := $v.crtPEM | default "" | trim -}}
{{- $key := $v.keyPEM | default "" | trim -}}
{{- $ca := $v.caBundle | default "" | trim -}}
{{- if $v.externalSecret -}}
{{- $_ := set .out "caBundle" (required "with tapInjector.externalSecret the Secret tap-injector-k8s-tls is managed outside the chart: tapInjector.caBundle must be the CA that signs its certificate" $ca) -}}
{{- else if and (empty $crt) (empty $key) (empty $ca) -}}
{{- $host := printf "tap-injector.%s.svc" .root.Release.Namespace -}}
{{- $caCert := genCAWithKey (printf "%s CA" $host) 365 (genPrivateKey "ecdsa") -}}
{{- $leaf := genSignedCertWithKey $host (list) (list $host) 365 $caCert (genPrivateKey "ecdsa") -}}
{{- $_ := set .out "crt" ($leaf.Cert | trim) -}}
{{- $_ := set .out "key" ($leaf.Key | trim) -}}
{{- $_ := set .out "caBundle" ($caCert.Cert | trim) -}}
{{- else if and $crt $key $ca -}}
{{- $_ := set .out "crt" $crt -}}
{{- $_ := set .out "key" $key -}}
{{- $_ := set .out "caBundle" $ca -}}
{{- else -}}
{{- fail "tapInjector.crtPEM, tapInjector.keyPEM and tapInjector.caBundle go together: give all three, or none and the chart generates them" -}}
{{- end -}}
{{- end -}}
