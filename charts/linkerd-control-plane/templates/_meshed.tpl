{{/*
The mesh's containers and volumes in a control-plane pod, from the
partials library. Each takes the root context with the pod's tweaks
already set (see the Deployments): the partials read .Values.proxy and
.Values.proxyInit.
*/}}

{{/* Init containers: linkerd-init, then the proxy when it is a native sidecar. */}}
{{- define "cp.meshInitContainers" -}}
- {{ include "partials.proxy-init" . | indent 2 | trim }}
{{- if .Values.proxy.nativeSidecar }}
- {{ include "partials.proxy" . | indent 2 | trim }}
{{- end }}
{{- end -}}

{{/* The proxy container, first of the pod's containers unless it is a native sidecar. */}}
{{- define "cp.meshContainers" -}}
{{- if not .Values.proxy.nativeSidecar }}
- {{ include "partials.proxy" . | indent 2 | trim }}
{{- end }}
{{- end -}}

{{/* Outbound ports the control plane's proxy-init skips: the pod must reach the API server before its proxy has an identity. */}}
{{- define "cp.skipOutboundPorts" -}}
{{- $ports := list -}}
{{- with .Values.proxyInit.ignoreOutboundPorts }}{{ $ports = append $ports . }}{{ end -}}
{{- $ports = append $ports (.Values.proxyInit.kubeAPIServerPorts | default "443,6443") -}}
{{- join "," $ports -}}
{{- end -}}
