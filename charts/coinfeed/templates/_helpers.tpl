{{/* Names and labels: every resource of this chart takes them from here. */}}

{{- define "coinfeed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coinfeed.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selector labels. Call with (dict "ctx" $ "component" "pushgateway"). */}}
{{- define "coinfeed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coinfeed.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels. Call with (dict "ctx" $ "component" "pushgateway"). */}}
{{- define "coinfeed.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "coinfeed.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: coinfeed
{{- end -}}

{{- define "coinfeed.monitoringLabels" -}}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The operator sub-chart's app.kubernetes.io/name, computed as its coinfeed-operator.name
does: its chart name is the alias `operator` unless operator.nameOverride says otherwise. */}}
{{- define "coinfeed.operatorName" -}}
{{- default "operator" .Values.operator.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* "true" when the hourly job runs Spark executors as pods (operator.spark.master k8s://...). */}}
{{- define "coinfeed.sparkOnKubernetes" -}}
{{- if hasPrefix "k8s://" (((.Values.operator | default dict).spark | default dict).master | default "") -}}true{{- end -}}
{{- end -}}

{{- define "coinfeed.sparkServiceAccount" -}}
{{- default (printf "%s-spark" (include "coinfeed.fullname" .)) .Values.spark.serviceAccount.name -}}
{{- end -}}

{{- define "coinfeed.lakeClaim" -}}
{{- default (printf "%s-lake" (include "coinfeed.fullname" .)) .Values.lake.pvc.existingClaim -}}
{{- end -}}

{{- define "coinfeed.pushgatewayName" -}}
{{- printf "%s-pushgateway" (include "coinfeed.fullname" .) -}}
{{- end -}}

{{/* The Pushgateway's ServiceAccount: its own (default <fullname>-pushgateway) when created;
with create=false the named one, else the namespace's default. */}}
{{- define "coinfeed.pushgatewayServiceAccount" -}}
{{- $sa := .Values.pushgateway.serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "coinfeed.pushgatewayName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{- define "coinfeed.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "coinfeed.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The Kafka sub-chart's full name, computed as charts/kafka's kafka.fullname does. */}}
{{- define "coinfeed.kafkaFullname" -}}
{{- $k := .Values.kafka -}}
{{- if $k.fullnameOverride -}}
{{- $k.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "kafka" $k.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "coinfeed.kafkaClientPort" -}}
{{- $port := 9092 -}}
{{- with .Values.kafka.listeners }}{{ with .client }}{{ with .port }}{{ $port = . }}{{ end }}{{ end }}{{ end -}}
{{- $port -}}
{{- end -}}

{{/* Sub-chart values cannot be templated from the release name: check that the addresses the
operator hands to producers and jobs name this release's Services, and say which value to set. */}}
{{- define "coinfeed.validate" -}}
{{- $op := .Values.operator -}}
{{- if .Values.components.kafka -}}
{{- $svc := include "coinfeed.kafkaFullname" . -}}
{{- $want := printf "%s:%s" $svc (include "coinfeed.kafkaClientPort" .) -}}
{{- $bootstrap := $op.kafka.bootstrap | default "" -}}
{{- if not (or (hasPrefix (printf "%s:" $svc) $bootstrap) (hasPrefix (printf "%s." $svc) $bootstrap)) -}}
{{- fail (printf "operator.kafka.bootstrap is %q but this release's Kafka Service is %s: set operator.kafka.bootstrap=%s" $bootstrap $svc $want) -}}
{{- end -}}
{{- end -}}
{{- if .Values.pushgateway.enabled -}}
{{- $pg := include "coinfeed.pushgatewayName" . -}}
{{- $want := printf "%s:%d" $pg (int .Values.pushgateway.port) -}}
{{- $addr := $op.pushgateway.address | default "" -}}
{{- if not (or (eq $addr $want) (hasPrefix (printf "%s." $pg) $addr) (hasPrefix (printf "http://%s" $pg) $addr)) -}}
{{- fail (printf "operator.pushgateway.address is %q but this release's Pushgateway is %s: set operator.pushgateway.address=%s" $addr $want $want) -}}
{{- end -}}
{{- end -}}
{{- if .Values.spark.serviceAccount.create -}}
{{- $sa := include "coinfeed.sparkServiceAccount" . -}}
{{- $have := (($op.spark | default dict).serviceAccountName) | default "" -}}
{{- if ne $have $sa -}}
{{- fail (printf "operator.spark.serviceAccountName is %q but this release's Spark ServiceAccount is %s: set operator.spark.serviceAccountName=%s" $have $sa $sa) -}}
{{- end -}}
{{- end -}}
{{- if and (include "coinfeed.sparkOnKubernetes" .) (eq .Values.lake.mode "pvc") (eq .Values.lake.pvc.accessMode "ReadWriteOncePod") -}}
{{- fail "operator.spark.master is k8s://... but lake.pvc.accessMode is ReadWriteOncePod: executor pods mount the lake too; use ReadWriteMany (or lake.mode s3)" -}}
{{- end -}}
{{- if eq .Values.lake.mode "pvc" -}}
{{- $claim := include "coinfeed.lakeClaim" . -}}
{{- if ne ($op.lake.persistentVolumeClaim | default "") $claim -}}
{{- fail (printf "lake.mode is pvc but operator.lake.persistentVolumeClaim is %q: set operator.lake.persistentVolumeClaim=%s" ($op.lake.persistentVolumeClaim | default "") $claim) -}}
{{- end -}}
{{- else -}}
{{- if ne ($op.lake.path | default "") .Values.lake.s3.uri -}}
{{- fail (printf "lake.mode is s3 but operator.lake.path is %q: set operator.lake.path=%s (and operator.lake.persistentVolumeClaim=\"\")" ($op.lake.path | default "") .Values.lake.s3.uri) -}}
{{- end -}}
{{- $s3 := $op.lake.s3 | default dict -}}
{{- range $key := list "endpoint" "existingSecret" -}}
{{- $want := (index $.Values.lake.s3 $key) | default "" -}}
{{- $have := (index $s3 $key) | default "" -}}
{{- if ne $have $want -}}
{{- fail (printf "lake.s3.%s is %q but operator.lake.s3.%s is %q: set operator.lake.s3.%s=%s" $key $want $key $have $key $want) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
