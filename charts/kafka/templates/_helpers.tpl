{{/* Names and labels: every resource of this chart takes them from here. */}}

{{- define "kafka.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-kafka, or the release name when it already contains the chart name. Kept short:
StatefulSet names must leave room for the controller-revision-hash label. */}}
{{- define "kafka.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kafka.brokerName" -}}{{ include "kafka.fullname" . }}{{- end -}}
{{- define "kafka.headlessName" -}}{{ include "kafka.fullname" . }}-headless{{- end -}}
{{- define "kafka.zookeeperName" -}}{{ include "kafka.fullname" . }}-zookeeper{{- end -}}
{{- define "kafka.zookeeperHeadlessName" -}}{{ include "kafka.fullname" . }}-zookeeper-headless{{- end -}}

{{/* The ServiceAccount a component's pods run as: its own (serviceAccount.name, default the
component's full name) when the chart creates it; with create=false the named one, else the
namespace's default. Call with (dict "sa" .Values.serviceAccount "fullname" "<name>"). */}}
{{- define "kafka.serviceAccountName" -}}
{{- if .sa.create -}}
{{- default .fullname .sa.name -}}
{{- else -}}
{{- default "default" .sa.name -}}
{{- end -}}
{{- end -}}

{{- define "kafka.brokerServiceAccount" -}}
{{- include "kafka.serviceAccountName" (dict "sa" .Values.serviceAccount "fullname" (include "kafka.brokerName" .)) -}}
{{- end -}}
{{- define "kafka.zookeeperServiceAccount" -}}
{{- include "kafka.serviceAccountName" (dict "sa" .Values.zookeeper.serviceAccount "fullname" (include "kafka.zookeeperName" .)) -}}
{{- end -}}

{{/* Selector labels. Call with (dict "ctx" $ "component" "broker"). */}}
{{- define "kafka.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels. Call with (dict "ctx" $ "component" "broker"). */}}
{{- define "kafka.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kafka.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: coinfeed
{{- end -}}

{{/* In-cluster bootstrap address of the client listener. */}}
{{- define "kafka.bootstrap" -}}
{{- printf "%s.%s.svc:%d" (include "kafka.brokerName" .) .Release.Namespace (int .Values.listeners.client.port) -}}
{{- end -}}

{{- define "kafka.zookeeperConnect" -}}
{{- printf "%s.%s.svc:2181" (include "kafka.zookeeperName" .) .Release.Namespace -}}
{{- end -}}

{{/* KRaft cluster id: the value, or a stable one derived from namespace/release (16 bytes,
base64url without padding: the form kafka-storage.sh expects). */}}
{{- define "kafka.kraftClusterId" -}}
{{- if .Values.kraft.clusterId -}}
{{- .Values.kraft.clusterId -}}
{{- else -}}
{{- printf "%s/%s" .Release.Namespace .Release.Name | sha256sum | trunc 16 | b64enc | replace "+" "-" | replace "/" "_" | trimSuffix "==" -}}
{{- end -}}
{{- end -}}

{{/* controller.quorum.voters: id@host:port for every combined node. */}}
{{- define "kafka.quorumVoters" -}}
{{- $voters := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $voters = append $voters (printf "%d@%s-%d.%s.%s.svc.%s:%d" $i (include "kafka.brokerName" $) $i (include "kafka.headlessName" $) $.Release.Namespace $.Values.clusterDomain (int $.Values.listeners.controller.port)) -}}
{{- end -}}
{{- join "," $voters -}}
{{- end -}}

{{/* Cross-field checks the schema cannot express, with a message naming the values. */}}
{{- define "kafka.validate" -}}
{{- $c := .Values.config -}}
{{- if gt (int $c.defaultReplicationFactor) (int .Values.replicas) -}}
{{- fail (printf "config.defaultReplicationFactor (%d) must not exceed replicas (%d)" (int $c.defaultReplicationFactor) (int .Values.replicas)) -}}
{{- end -}}
{{- if gt (int $c.minInsyncReplicas) (int $c.defaultReplicationFactor) -}}
{{- fail (printf "config.minInsyncReplicas (%d) must not exceed config.defaultReplicationFactor (%d): no write could succeed" (int $c.minInsyncReplicas) (int $c.defaultReplicationFactor)) -}}
{{- end -}}
{{- $secured := ne .Values.listeners.client.protocol "PLAINTEXT" -}}
{{- if and $secured (not .Values.tls.existingSecret) -}}
{{- fail (printf "listeners.client.protocol %s needs tls.existingSecret: the internal listener is then mutual TLS, so no PLAINTEXT listener remains" .Values.listeners.client.protocol) -}}
{{- end -}}
{{- if and .Values.authorization.enabled (not $secured) -}}
{{- fail "authorization.enabled needs a secured client listener (listeners.client.protocol SSL, SASL_PLAINTEXT or SASL_SSL): ACLs on anonymous clients mean nothing" -}}
{{- end -}}
{{- if and .Values.sasl.usersSecret (not (contains "SASL" .Values.listeners.client.protocol)) -}}
{{- fail "sasl.usersSecret needs listeners.client.protocol SASL_PLAINTEXT or SASL_SSL" -}}
{{- end -}}
{{- $ports := list (int .Values.listeners.client.port) (int .Values.listeners.internal.port) (int .Values.listeners.controller.port) -}}
{{- if ne (len ($ports | uniq)) 3 -}}
{{- fail (printf "listeners: client, internal and controller ports must differ, got %v" $ports) -}}
{{- end -}}
{{- end -}}

{{/* Pod security context shared by every pod of the chart: the restricted Pod Security level. */}}
{{- define "kafka.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kafka.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Anti-affinity spreading the pods of one component over nodes. (dict "ctx" $ "component" "x") */}}
{{- define "kafka.affinity" -}}
{{- if eq .ctx.Values.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "kafka.selectorLabels" . | nindent 14 }}
{{- else if eq .ctx.Values.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "kafka.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end -}}

{{- define "kafka.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether the client listener is secured: then the internal (and controller) listeners are mTLS. */}}
{{- define "kafka.secured" -}}
{{- if ne .Values.listeners.client.protocol "PLAINTEXT" }}true{{ end -}}
{{- end -}}
