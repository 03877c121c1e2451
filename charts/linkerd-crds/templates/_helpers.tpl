{{/* Labels of every CRD of the chart. */}}
{{- define "linkerd-crds.labels" -}}
linkerd.io/control-plane-ns: {{ .Release.Namespace }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A Kubernetes label selector (matchLabels / matchExpressions). */}}
{{- define "linkerd-crds.labelSelector" -}}
type: object
properties:
  matchLabels:
    type: object
    additionalProperties:
      type: string
  matchExpressions:
    type: array
    items:
      type: object
      required: [key, operator]
      properties:
        key:
          type: string
        operator:
          type: string
          enum: [In, NotIn, Exists, DoesNotExist]
        values:
          type: array
          items:
            type: string
{{- end -}}

{{/* A reference to another resource by group, kind and name. */}}
{{- define "linkerd-crds.targetRef" -}}
type: object
required: [kind, name]
properties:
  group:
    type: string
    maxLength: 253
  kind:
    type: string
    minLength: 1
    maxLength: 63
  name:
    type: string
    minLength: 1
    maxLength: 253
  namespace:
    type: string
    maxLength: 63
{{- end -}}

{{/* A network: a CIDR and the CIDRs excepted from it. */}}
{{- define "linkerd-crds.network" -}}
type: object
required: [cidr]
properties:
  cidr:
    type: string
    description: A network in CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32.
  except:
    type: array
    description: CIDRs within cidr that the network does not include.
    items:
      type: string
{{- end -}}
