{{/*
Deep merge for workload settings: every key of the override wins, including false, 0 and "".
(Sprig's mergeOverwrite skips "empty" values, so `autoscaling: { enabled: false }` would be lost.)
Usage: include "flywheel.merge" (list $base $override) | fromYaml
*/}}
{{- define "flywheel.merge" -}}
{{- $base := deepCopy (index . 0) -}}
{{- range $k, $v := (index . 1) -}}
{{- $b := get $base $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $b) -}}
{{- $_ := set $base $k (include "flywheel.merge" (list $b $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $base $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $base -}}
{{- end -}}

{{/* The settings of one workload: serviceDefaults overlaid by services.<name>. Usage: (list $ $name) */}}
{{- define "flywheel.service" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- include "flywheel.merge" (list $root.Values.serviceDefaults (index $root.Values.services $name)) -}}
{{- end -}}

{{- define "flywheel.chart" -}}
{{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels shared by everything the chart renders. Usage: (list $ $name $component) */}}
{{- define "flywheel.labels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 2 }}
app.kubernetes.io/part-of: flywheel
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ include "flywheel.chart" $root }}
{{- end -}}

{{/* Selector labels: stable across upgrades. Usage: (list $ $name) */}}
{{- define "flywheel.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "flywheel.component" -}}
{{- if eq . "gateway" }}gateway{{ else }}subgraph{{ end -}}
{{- end -}}

{{/* Image of one workload: services.<name>.image.ref (as skaffold sets it), else registry/name:tag. Usage: (list $ $name $svc) */}}
{{- define "flywheel.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $img := (index . 2).image | default dict -}}
{{- if $img.ref -}}
{{- $img.ref -}}
{{- else -}}
{{- $repo := $img.repository | default (printf "%s/%s" $root.Values.image.registry $name) -}}
{{- $tag := $img.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.secretName" -}}
{{- .Values.secrets.existingSecret | default "flywheel-secrets" -}}
{{- end -}}

{{/* Secret keys every workload of a kind reads, beyond its own secretEnv. */}}
{{- define "flywheel.commonSecretEnv" -}}
INTERNAL_TOKEN_SECRET: INTERNAL_TOKEN_SECRET
NATS_URL: NATS_URL
{{- if ne . "gateway" }}
MONGO_URL: MONGO_URL
{{- end }}
{{- end -}}

{{/* Hardened container securityContext shared by every container the chart runs. */}}
{{- define "flywheel.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod securityContext: the image's node user (uid 1000), never root. */}}
{{- define "flywheel.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}
