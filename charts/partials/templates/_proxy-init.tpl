{{/*
linkerd-init: installs the pod's iptables redirection before the app starts.
It runs our linkerd-init binary from the proxy image. Context: as for
partials.proxy (see _proxy.tpl). Its /run is the
linkerd-proxy-init-xtables-lock volume of partials.proxy.volumes (the root
filesystem is read-only; iptables keeps its lock there).
*/}}
{{- define "partials.proxy-init" -}}
{{- $i := .Values.proxyInit -}}
{{- $p := .Values.proxy -}}
{{- $fw := "" -}}
{{- if eq (toString $i.iptablesMode) "nft" -}}{{- $fw = "iptables-nft" -}}
{{- else if eq (toString $i.iptablesMode) "legacy" -}}{{- $fw = "iptables-legacy" -}}
{{- else -}}{{- fail (printf "proxyInit.iptablesMode must be legacy or nft, not %q" (toString $i.iptablesMode)) -}}
{{- end -}}
{{- $closeWait := $i.closeWaitTimeoutSecs | int64 -}}
{{- $root := or $i.runAsRoot (gt $closeWait 0) -}}
name: linkerd-init
image: {{ include "partials.proxy.image" . }}
imagePullPolicy: {{ include "partials.proxy.pullPolicy" . }}
command:
- /usr/lib/linkerd/linkerd2-proxy-init
args:
- --firewall-bin-path
- {{ $fw }}
- --firewall-save-bin-path
- {{ $fw }}-save
{{- if .Values.disableIPv6 }}
- --ipv6=false
{{- else }}
- --ipv6=true
{{- end }}
- --incoming-proxy-port
- "{{ $p.ports.inbound | int64 }}"
- --outgoing-proxy-port
- "{{ $p.ports.outbound | int64 }}"
- --proxy-uid
- "{{ $p.uid | int64 }}"
{{- if ne (toString $p.gid) "" }}
- --proxy-gid
- "{{ $p.gid | int64 }}"
{{- end }}
- --inbound-ports-to-ignore
- "{{ $p.ports.control | int64 }},{{ $p.ports.admin | int64 }}{{ with $i.ignoreInboundPorts }},{{ . }}{{ end }}"
{{- with $i.ignoreOutboundPorts }}
- --outbound-ports-to-ignore
- {{ toString . | quote }}
{{- end }}
{{- with $i.skipSubnets }}
- --subnets-to-ignore
- {{ toString . | quote }}
{{- end }}
{{- if gt $closeWait 0 }}
- --timeout-close-wait-secs
- "{{ $closeWait }}"
{{- end }}
{{- with $i.logLevel }}
- --log-level
- {{ toString . | quote }}
{{- end }}
{{- with $i.logFormat }}
- --log-format
- {{ toString . | quote }}
{{- end }}
{{- include "partials.resources" $i.resources }}
securityContext:
  allowPrivilegeEscalation: {{ gt $closeWait 0 }}
  capabilities:
    add:
    - NET_ADMIN
    - NET_RAW
  privileged: {{ gt $closeWait 0 }}
  readOnlyRootFilesystem: true
  {{- if $root }}
  runAsGroup: 0
  runAsNonRoot: false
  runAsUser: 0
  {{- else }}
  runAsGroup: {{ $i.runAsGroup | int64 }}
  runAsNonRoot: true
  runAsUser: {{ $i.runAsUser | int64 }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
terminationMessagePolicy: FallbackToLogsOnError
volumeMounts:
- mountPath: /run
  name: linkerd-proxy-init-xtables-lock
{{- end -}}
