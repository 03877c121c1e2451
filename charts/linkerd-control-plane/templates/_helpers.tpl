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
the value. Call with (list "identityTrustAnchorsPEM" .Values.identityTrustAnchorsPEM)
or, with what to give instead of the generic hint, (list NAME VALUE HINT).
*/}}
{{- define "cp.requiredPEM" -}}
{{- $name := index . 0 -}}
{{- $pem := index . 1 | default "" | trim -}}
{{- $hint := printf "set it from a file: --set-file %s=FILE (linkerd install generates it)" $name -}}
{{- if gt (len .) 2 }}{{ $hint = index . 2 }}{{ end -}}
{{- if not (contains "-----BEGIN" $pem) -}}
{{- fail (printf "%s is required and must be PEM: %s" $name $hint) -}}
{{- end -}}
{{- $pem -}}
{{- end -}}

{{/*
The serving certificate of an admission webhook and the CA bundle of its
webhook configuration. Call with
  (dict "root" . "key" "proxyInjector" "service" "linkerd-proxy-injector" "secret" "linkerd-proxy-injector-k8s-tls" "out" $tls)
where $tls is a dict: the template fills in $tls.crt, $tls.key and
$tls.caBundle (PEM; crt and key are empty with externalSecret).
  - <key>.externalSecret: the Secret is managed outside the chart (e.g. by
    cert-manager); <key>.caBundle must be the CA that signs its certificate.
  - <key>.crtPEM, .keyPEM and .caBundle all given (linkerd install does):
    those.
  - none of them given (helm install): a new CA and a certificate it signs
    for <service>.<namespace>.svc, both valid for a year (as linkerd
    install's). Each render generates new ones: call this once per template
    file and use $tls for both the Secret and the webhook configuration, so
    that they match.
*/}}
{{- define "cp.webhookTLS" -}}
{{- $v := index .root.Values .key -}}
{{- $crt := $v.crtPEM | default "" | trim -}}
{{- $key := $v.keyPEM | default "" | trim -}}
{{- $ca := $v.caBundle | default "" | trim -}}
{{- if $v.externalSecret -}}
{{- $hint := printf "with %s.externalSecret the Secret %s is managed outside the chart, and the chart needs the CA that signs its certificate" .key .secret -}}
{{- $_ := set .out "caBundle" (include "cp.requiredPEM" (list (printf "%s.caBundle" .key) $ca $hint)) -}}
{{- $_ := set .out "crt" "" -}}
{{- $_ := set .out "key" "" -}}
{{- else if and (empty $crt) (empty $key) (empty $ca) -}}
{{- $host := printf "%s.%s.svc" .service (include "cp.namespace" .root) -}}
{{- $days := 365 -}}
{{- $caCert := genCAWithKey (printf "%s CA" $host) $days (genPrivateKey "ecdsa") -}}
{{- $leaf := genSignedCertWithKey $host (list) (list $host) $days $caCert (genPrivateKey "ecdsa") -}}
{{- $_ := set .out "crt" ($leaf.Cert | trim) -}}
{{- $_ := set .out "key" ($leaf.Key | trim) -}}
{{- $_ := set .out "caBundle" ($caCert.Cert | trim) -}}
{{- else -}}
{{- $hint := printf "%s.crtPEM, %s.keyPEM and %s.caBundle go together: give all three, or none and the chart generates them" .key .key .key -}}
{{- $_ := set .out "crt" (include "cp.requiredPEM" (list (printf "%s.crtPEM" .key) $crt $hint)) -}}
{{- $_ := set .out "key" (include "cp.requiredPEM" (list (printf "%s.keyPEM" .key) $key $hint)) -}}
{{- $_ := set .out "caBundle" (include "cp.requiredPEM" (list (printf "%s.caBundle" .key) $ca $hint)) -}}
{{- end -}}
{{- end -}}
