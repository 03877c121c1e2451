{{/*
The Linkerd proxy, defined once for the control-plane chart (its own meshed
pods) and the proxy injector / `linkerd inject` (the patch chart).

Templates:
  partials.proxy          the linkerd-proxy container (a mapping: use it as a
                          list item, `- {{- include "partials.proxy" . | nindent N }}`).
                          With proxy.nativeSidecar it carries restartPolicy: Always
                          and belongs in initContainers (after linkerd-init),
                          otherwise it should be the first of containers.
  partials.proxy-init     the linkerd-init init container (a mapping, as above).
  partials.proxy.volumes  the pod volumes both need (a list: linkerd-identity-end-entity,
                          linkerd-identity-token, linkerd-proxy-init-xtables-lock).
  partials.proxy.annotations, partials.proxy.labels
                          metadata Linkerd writes on meshed pods (see _helpers.tpl).

Context: the chart's root context `.`, or any dict with a "Values" key (and
optionally "Chart"), e.g. (dict "Values" $podValues "Chart" .Chart) to mesh
one pod with overrides. Values read (linkerd-control-plane's values.yaml
layout): proxy.*, proxyInit.*, clusterDomain, identityTrustDomain,
clusterNetworks, controllerNamespace, identityTrustAnchorsPEM (required),
linkerdVersion, imagePullPolicy, disableIPv6, defaultOpaquePorts.

Per-pod values (set by the injector from the pod and its annotations, or by a
chart for its own pods): proxy.podInboundPorts, proxy.opaquePorts,
proxy.isIngress, and, for control-plane pods whose proxy reaches its
component on loopback, proxy.destinationSvcAddr / proxy.identitySvcAddr
(e.g. "localhost.:8086" / "localhost.:8080").

The environment is the part of Linkerd's LINKERD2_PROXY_* set that our proxy
(proxy/config) interprets; linkerd-init's arguments are those of
proxyinit/.
*/}}

{{- define "partials.proxy" -}}
{{- $p := .Values.proxy -}}
{{- $ns := .Values.controllerNamespace -}}
{{- $domain := .Values.clusterDomain -}}
{{- $td := include "partials.trustDomain" . -}}
{{- $any := include "partials.anyHost" . -}}
{{- $admin := $p.ports.admin | int64 -}}
{{- $native := $p.nativeSidecar -}}
{{- $idSuffix := printf "serviceaccount.identity.%s.%s" $ns $td -}}
name: linkerd-proxy
image: {{ include "partials.proxy.image" . }}
imagePullPolicy: {{ include "partials.proxy.pullPolicy" . }}
env:
- name: _pod_name
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: _pod_ns
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: _pod_nodeName
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: _pod_sa
  valueFrom:
    fieldRef:
      fieldPath: spec.serviceAccountName
- name: _l5d_ns
  value: {{ $ns | toJson }}
- name: _l5d_trustdomain
  value: {{ $td | toJson }}
- name: LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED
  value: {{ ternary "true" "false" (not (not $p.enableShutdownEndpoint)) | quote }}
- name: LINKERD2_PROXY_LOG
  value: {{ ternary $p.logLevel (printf "%s,[{headers}]=off,[{request}]=off" $p.logLevel) (eq (toString $p.logHTTPHeaders) "insecure") | toJson }}
- name: LINKERD2_PROXY_LOG_FORMAT
  value: {{ $p.logFormat | default "plain" | toJson }}
- name: LINKERD2_PROXY_DESTINATION_SVC_ADDR
  value: {{ $p.destinationSvcAddr | default (printf "linkerd-dst-headless.%s.svc.%s.:8086" $ns $domain) | toJson }}
- name: LINKERD2_PROXY_DESTINATION_SVC_NAME
  value: {{ printf "linkerd-destination.%s.%s" $ns $idSuffix | toJson }}
- name: LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS
  value: {{ .Values.clusterNetworks | toJson }}
- name: LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES
  value: {{ ternary "." (printf "svc.%s." $domain) (not (not $p.enableExternalProfiles)) | toJson }}
- name: LINKERD2_PROXY_DESTINATION_CONTEXT
  value: '{"ns":"$(_pod_ns)", "nodeName":"$(_pod_nodeName)", "pod":"$(_pod_name)"}'
- name: LINKERD2_PROXY_POLICY_SVC_ADDR
  value: {{ $p.policySvcAddr | default (printf "linkerd-policy.%s.svc.%s.:8090" $ns $domain) | toJson }}
- name: LINKERD2_PROXY_POLICY_SVC_NAME
  value: {{ printf "linkerd-destination.%s.%s" $ns $idSuffix | toJson }}
- name: LINKERD2_PROXY_POLICY_WORKLOAD
  value: '{"ns":"$(_pod_ns)", "pod":"$(_pod_name)"}'
- name: LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS
  value: {{ .Values.clusterNetworks | toJson }}
- name: LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT
  value: {{ $p.inboundConnectTimeout | toJson }}
- name: LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT
  value: {{ $p.outboundConnectTimeout | toJson }}
- name: LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT
  value: {{ $p.outboundDiscoveryCacheUnusedTimeout | toJson }}
- name: LINKERD2_PROXY_CONTROL_LISTEN_ADDR
  value: "{{ $any }}:{{ $p.ports.control | int64 }}"
- name: LINKERD2_PROXY_ADMIN_LISTEN_ADDR
  value: "{{ $any }}:{{ $admin }}"
- name: LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR
  value: "127.0.0.1:{{ $p.ports.outbound | int64 }}"
- name: LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS
  value: "127.0.0.1:{{ $p.ports.outbound | int64 }}{{ if not .Values.disableIPv6 }},[::1]:{{ $p.ports.outbound | int64 }}{{ end }}"
- name: LINKERD2_PROXY_INBOUND_LISTEN_ADDR
  value: "{{ $any }}:{{ $p.ports.inbound | int64 }}"
{{- with $p.podInboundPorts }}
- name: LINKERD2_PROXY_INBOUND_PORTS
  value: {{ toString . | toJson }}
{{- end }}
{{- with ($p.opaquePorts | default .Values.defaultOpaquePorts) }}
- name: LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION
  value: {{ toString . | toJson }}
{{- end }}
{{- if $p.disableInboundProtocolDetectTimeout }}
- name: LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT
  value: 365d
{{- end }}
{{- if $p.disableOutboundProtocolDetectTimeout }}
- name: LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT
  value: 365d
{{- end }}
{{- if $p.isIngress }}
- name: LINKERD2_PROXY_INGRESS_MODE
  value: "true"
{{- end }}
{{- with $p.defaultInboundPolicy }}
{{- if ne (toString .) "all-unauthenticated" }}
- name: LINKERD2_PROXY_INBOUND_DEFAULT_POLICY
  value: {{ toString . | toJson }}
{{- end }}
{{- end }}
{{- with $p.requireIdentityOnInboundPorts }}
- name: LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY
  value: {{ toString . | toJson }}
{{- end }}
{{- with $p.shutdownGracePeriod }}
- name: LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD
  value: {{ toString . | toJson }}
{{- end }}
- name: LINKERD2_PROXY_IDENTITY_DIR
  value: /var/run/linkerd/identity/end-entity
- name: LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS
  value: {{ required "identityTrustAnchorsPEM must be set" .Values.identityTrustAnchorsPEM | toJson }}
- name: LINKERD2_PROXY_IDENTITY_TOKEN_FILE
  value: /var/run/secrets/tokens/linkerd-identity-token
- name: LINKERD2_PROXY_IDENTITY_SVC_ADDR
  value: {{ $p.identitySvcAddr | default (printf "linkerd-identity-headless.%s.svc.%s.:8080" $ns $domain) | toJson }}
- name: LINKERD2_PROXY_IDENTITY_SVC_NAME
  value: {{ printf "linkerd-identity.%s.%s" $ns $idSuffix | toJson }}
- name: LINKERD2_PROXY_IDENTITY_LOCAL_NAME
  value: $(_pod_sa).$(_pod_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)
{{- with $p.additionalEnv }}
{{ toYaml . }}
{{- end }}
ports:
- containerPort: {{ $p.ports.inbound | int64 }}
  name: linkerd-proxy
- containerPort: {{ $admin }}
  name: linkerd-admin
livenessProbe:
  httpGet:
    path: /live
    port: {{ $admin }}
  initialDelaySeconds: {{ $p.livenessProbe.initialDelaySeconds | int64 }}
  timeoutSeconds: {{ $p.livenessProbe.timeoutSeconds | int64 }}
readinessProbe:
  httpGet:
    path: /ready
    port: {{ $admin }}
  initialDelaySeconds: {{ $p.readinessProbe.initialDelaySeconds | int64 }}
  timeoutSeconds: {{ $p.readinessProbe.timeoutSeconds | int64 }}
{{- if and $native $p.await }}
startupProbe:
  httpGet:
    path: /ready
    port: {{ $admin }}
  periodSeconds: 1
  failureThreshold: 120
{{- end }}
{{- if $native }}
restartPolicy: Always
{{- end }}
{{- include "partials.resources" $p.resources }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: {{ ne ($p.uid | int64) 0 }}
  runAsUser: {{ $p.uid | int64 }}
  {{- if ne (toString $p.gid) "" }}
  runAsGroup: {{ $p.gid | int64 }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
terminationMessagePolicy: FallbackToLogsOnError
{{- if and (not $native) (or $p.await $p.waitBeforeExitSeconds) }}
lifecycle:
  {{- if $p.await }}
  postStart:
    exec:
      command:
      - /usr/lib/linkerd/linkerd-await
      - --timeout=2m
      - --port={{ $admin }}
  {{- end }}
  {{- if $p.waitBeforeExitSeconds }}
  preStop:
    sleep:
      seconds: {{ $p.waitBeforeExitSeconds | int64 }}
  {{- end }}
{{- end }}
volumeMounts:
- mountPath: /var/run/linkerd/identity/end-entity
  name: linkerd-identity-end-entity
- mountPath: /var/run/secrets/tokens
  name: linkerd-identity-token
{{- end -}}

{{- define "partials.proxy.volumes" -}}
- name: linkerd-identity-end-entity
  emptyDir:
    medium: Memory
- name: linkerd-identity-token
  projected:
    sources:
    - serviceAccountToken:
        audience: identity.l5d.io
        expirationSeconds: 86400
        path: linkerd-identity-token
- name: linkerd-proxy-init-xtables-lock
  emptyDir: {}
{{- end -}}
