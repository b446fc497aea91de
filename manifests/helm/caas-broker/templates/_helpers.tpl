{{/*
The chart name, or nameOverride.
*/}}
{{- define "caas-broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of every object: fullnameOverride, else the release name when it contains the chart name, else
"<release>-<chart>". At most 63 characters (a label value; the longest derived name adds "-tenant-guard").
*/}}
{{- define "caas-broker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "caas-broker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "caas-broker.labels" -}}
helm.sh/chart: {{ include "caas-broker.chart" . }}
{{ include "caas-broker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the broker pods (stable across upgrades: a Deployment's selector cannot change).
*/}}
{{- define "caas-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "caas-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The broker's ServiceAccount.
*/}}
{{- define "caas-broker.serviceAccountName" -}}
{{- include "caas-broker.fullname" . }}
{{- end }}

{{/*
The Secret with the keys "username" and "password": auth.existingSecret, else the chart's own.
*/}}
{{- define "caas-broker.credentialsSecret" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- printf "%s-credentials" (include "caas-broker.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "caas-broker.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The identity namespace (kubernetes.identity_namespace of the broker): kubernetes.identityNamespace, else
"<fullname>-identities" ("caas-broker-identities" for the release "caas-broker", the broker's default). A namespace
name, and not the release namespace: the tenant guard treats every ServiceAccount of the identity namespace as a
tenant credential, which would include the broker's own.
*/}}
{{- define "caas-broker.identityNamespace" -}}
{{- $name := .Values.kubernetes.identityNamespace | default (printf "%s-identities" (include "caas-broker.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- if not (and (le (len $name) 63) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name)) }}
{{- fail (printf "kubernetes.identityNamespace must be a namespace name (at most 63 of [a-z0-9-], starting and ending with a letter or digit), not %q" $name) }}
{{- end }}
{{- if eq $name .Release.Namespace }}
{{- fail (printf "kubernetes.identityNamespace must differ from the release namespace %q: no ServiceAccount there may be taken for a tenant's" $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/*
The tenant guard's version: the label caas-broker.io/guard-version on every policy and binding of tenant-guard.yaml.
The broker expects at least this version (src/broker/tenant_guard.rs GUARD_VERSION) and is not ready without it.
*/}}
{{- define "caas-broker.guardVersion" -}}
2
{{- end }}

{{/*
The broker's configuration file when clusters is not empty: the clusters key of docs/configuration.md, with each other
cluster's kubeconfig (and CA) at the path its Secret is mounted on (see templates/deployment.yaml). Fails, naming the
entry, where the list cannot be what the broker accepts: exactly one home, names unique, every other cluster with its
kubeconfig Secret. The broker checks the rest (weights, labels) when it starts.
*/}}
{{- define "caas-broker.clustersConfig" -}}
{{- $clusters := list }}
{{- $homes := 0 }}
{{- $names := dict }}
{{- range $i, $c := .Values.clusters }}
{{- $name := toString ($c.name | default "") }}
{{- if not (regexMatch "^[a-z0-9-]{1,40}$" $name) }}
{{- fail (printf "clusters[%d].name must be 1 to 40 of [a-z0-9-], not %q" $i $name) }}
{{- end }}
{{- if hasKey $names $name }}
{{- fail (printf "clusters[%d].name %q is used twice: names must be unique" $i $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- $cluster := dict "name" $name }}
{{- if $c.home }}
{{- $homes = add1 $homes }}
{{- if or $c.kubeconfigSecret $c.context }}
{{- fail (printf "clusters[%d] (%s) is the home: the cluster the chart is installed on, reached in-cluster; it takes no kubeconfigSecret or context" $i $name) }}
{{- end }}
{{- $_ := set $cluster "home" true }}
{{- else }}
{{- if not $c.kubeconfigSecret }}
{{- fail (printf "clusters[%d] (%s) is not the home: it needs kubeconfigSecret, a Secret with the key \"kubeconfig\" for the broker's credentials there" $i $name) }}
{{- end }}
{{- $_ := set $cluster "kubeconfig" (printf "/etc/caas-broker/clusters/%s/kubeconfig" $name) }}
{{- with $c.context }}{{ $_ := set $cluster "context" . }}{{ end }}
{{- end }}
{{- with $c.labels }}
{{- $labels := dict }}
{{- range $key, $value := . }}{{ $_ := set $labels $key (toString $value) }}{{ end }}
{{- $_ := set $cluster "labels" $labels }}
{{- end }}
{{- if hasKey $c "weight" }}{{ $_ := set $cluster "weight" $c.weight }}{{ end }}
{{- if hasKey $c "cordoned" }}{{ $_ := set $cluster "cordoned" $c.cordoned }}{{ end }}
{{- with $c.publicServer }}
{{- if not (hasPrefix "https://" .) }}
{{- fail (printf "clusters[%d].publicServer must be an https:// URL, not %q" $i .) }}
{{- end }}
{{- $_ := set $cluster "public_server" . }}
{{- end }}
{{- if $c.caSecret }}
{{- $_ := set $cluster "public_ca_file" (printf "/etc/caas-broker/clusters/%s/ca.crt" $name) }}
{{- end }}
{{- $clusters = append $clusters $cluster }}
{{- end }}
{{- if ne $homes 1 }}
{{- fail (printf "clusters: exactly one entry must have home: true (the cluster the chart is installed on), not %d" $homes) }}
{{- end }}
{{- toYaml (dict "clusters" $clusters) }}
{{- end }}
