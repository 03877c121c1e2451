{{/*
Small helpers of the proxy templates (see _proxy.tpl for the context they
take: the chart's root context, or any dict with a "Values" key).
*/}}

{{/* The proxy's version: proxy.image.version, else linkerdVersion, else the chart's appVersion. */}}
{{- define "partials.proxy.version" -}}
{{- $v := .Values.proxy.image.version | default .Values.linkerdVersion -}}
{{- if and (not $v) .Chart -}}{{- $v = .Chart.AppVersion -}}{{- end -}}
{{- required "proxy.image.version or linkerdVersion must be set" $v -}}
{{- end -}}

{{/* The proxy image reference, name:version. */}}
{{- define "partials.proxy.image" -}}
{{ .Values.proxy.image.name }}:{{ include "partials.proxy.version" . }}
{{- end -}}

{{/* Pull policy of the proxy image (also used by linkerd-init, which runs from it). */}}
{{- define "partials.proxy.pullPolicy" -}}
{{ .Values.proxy.image.pullPolicy | default .Values.imagePullPolicy | default "IfNotPresent" }}
{{- end -}}

{{/* The identity trust domain: identityTrustDomain, else clusterDomain. */}}
{{- define "partials.trustDomain" -}}
{{ .Values.identityTrustDomain | default .Values.clusterDomain }}
{{- end -}}

{{/* The wildcard listen host: 0.0.0.0, or [::] with IPv6 enabled. */}}
{{- define "partials.anyHost" -}}
{{ if .Values.disableIPv6 }}0.0.0.0{{ else }}[::]{{ end }}
{{- end -}}

{{/*
A container's resources from Linkerd's values layout
{cpu: {request, limit}, memory: {...}, ephemeral-storage: {...}}; renders
nothing when no request or limit is set. Context: that dict.
*/}}
{{- define "partials.resources" -}}
{{- $req := dict -}}
{{- $lim := dict -}}
{{- range $name, $r := . -}}
{{- if kindIs "map" $r -}}
{{- with $r.request }}{{ $_ := set $req $name (toString .) }}{{ end -}}
{{- with $r.limit }}{{ $_ := set $lim $name (toString .) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $res := dict -}}
{{- if $req }}{{ $_ := set $res "requests" $req }}{{ end -}}
{{- if $lim }}{{ $_ := set $res "limits" $lim }}{{ end -}}
{{- if $res }}
resources:
  {{- toYaml $res | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
Annotations Linkerd writes on a meshed pod (besides linkerd.io/created-by,
which names the tool): the proxy version and the trust anchors' SHA-256.
*/}}
{{- define "partials.proxy.annotations" -}}
linkerd.io/proxy-version: {{ include "partials.proxy.version" . | quote }}
linkerd.io/trust-root-sha256: {{ required "identityTrustAnchorsPEM must be set" .Values.identityTrustAnchorsPEM | sha256sum }}
{{- end -}}

{{/* Labels Linkerd writes on a meshed pod (besides the workload labels). */}}
{{- define "partials.proxy.labels" -}}
linkerd.io/control-plane-ns: {{ .Values.controllerNamespace }}
{{- end -}}
