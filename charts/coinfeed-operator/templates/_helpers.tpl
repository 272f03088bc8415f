{{/* Chart name, overridable. */}}
{{- define "coinfeed-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart unless the release already contains the chart name. */}}
{{- define "coinfeed-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "coinfeed-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The one place app.kubernetes.io/* labels are written. */}}
{{- define "coinfeed-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "coinfeed-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coinfeed
app.kubernetes.io/component: operator
{{- end -}}

{{/* The uninstall hook's own name: it must not match the operator's selector, or it would wait
for itself to stop. */}}
{{- define "coinfeed-operator.hookLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "coinfeed-operator.name" . }}-uninstall
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coinfeed
app.kubernetes.io/component: uninstall-hook
{{- end -}}

{{- define "coinfeed-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coinfeed-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "coinfeed-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "coinfeed-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the operator watches (namespaced mode). */}}
{{- define "coinfeed-operator.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "coinfeed-operator.image" -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) -}}
{{- end -}}

{{/* The Spark RPC Secret: <fullname>-spark-rpc, short enough that Spark's executor volume
<name>-volume stays a 63-character DNS label (operator.settings.MAX_RPC_SECRET_NAME). */}}
{{- define "coinfeed-operator.sparkRpcSecret" -}}
{{- printf "%s-spark-rpc" (include "coinfeed-operator.fullname" . | trunc 46 | trimSuffix "-") -}}
{{- end -}}

{{/* "true" when Spark RPC authentication is on: also when the value is absent, as after
`helm upgrade --reuse-values` from a chart without it (a secure default must not turn off). */}}
{{- define "coinfeed-operator.sparkRpcAuthentication" -}}
{{- if or (not (hasKey .Values.spark "rpcAuthentication")) .Values.spark.rpcAuthentication -}}
true
{{- end -}}
{{- end -}}
