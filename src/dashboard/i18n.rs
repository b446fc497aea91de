//! The dashboard's texts in English and Korean, chosen from the browser's `Accept-Language`: one table per language,
//! so that a missing translation is a compile error rather than a blank on the page.

use crate::lifecycle::Signer;
use crate::tenant::alerts::{AlertKind, Severity};

/// Every text of the dashboard in one language.
pub struct Translation {
    /// `lang` of the page.
    pub lang: &'static str,
    /// Product name in the title.
    pub product: &'static str,
    /// Heading of the sign-in page.
    pub sign_in: &'static str,
    /// What to paste.
    pub token_label: &'static str,
    /// Where the token comes from.
    pub token_help: &'static str,
    /// The sign-in button.
    pub sign_in_button: &'static str,
    /// A token that opens nothing here.
    pub refused: &'static str,
    /// A kubeconfig's token (minted by the dashboard) tried to sign in.
    pub kubeconfig_token_refused: &'static str,
    /// Too many sign-in attempts from one address or with one token (429).
    pub too_many_sign_ins: &'static str,
    /// The dashboard holds as many sessions as it may (503).
    pub sessions_full: &'static str,
    /// No kubeconfig: the session's token ends too soon for one.
    pub kubeconfig_too_late: &'static str,
    /// Signed in to another instance.
    pub other_instance: &'static str,
    /// The sign-out button.
    pub sign_out: &'static str,
    /// Signed in as.
    pub signed_in_as: &'static str,
    /// The endpoint tester, to someone whose role does not let them send requests.
    pub try_view_only: &'static str,
    /// The logs of a workload's pods together: link and heading.
    pub pods_logs: &'static str,
    /// Said before "shown / all" when a workload has more pods than are read together.
    pub pods_logs_cut: &'static str,
    /// No line of any pod (or none the filter keeps).
    pub pods_no_logs: &'static str,
    /// The logs' text filter.
    pub log_filter_text: &'static str,
    /// The logs' severity filter.
    pub log_filter_level: &'static str,
    /// Severity filter: every line.
    pub log_level_all: &'static str,
    /// Severity filter: warnings and errors.
    pub log_level_warning: &'static str,
    /// Severity filter: errors only.
    pub log_level_error: &'static str,
    /// Who signed in, when it is the instance's owner.
    pub signer_owner: &'static str,
    /// Who signed in, when it is a binding: this word, then the binding's id.
    pub signer_binding: &'static str,
    /// Who signed in, when it is a member: this word, then their name.
    pub signer_member: &'static str,
    /// Plan.
    pub plan: &'static str,
    /// Namespace.
    pub namespace: &'static str,
    /// Alerts heading.
    pub alerts: &'static str,
    /// No alert.
    pub no_alerts: &'static str,
    /// Quota heading.
    pub quota: &'static str,
    /// Column: resource.
    pub resource: &'static str,
    /// Column: used.
    pub used: &'static str,
    /// Column: limit.
    pub hard: &'static str,
    /// Container defaults heading.
    pub defaults: &'static str,
    /// Column: default request.
    pub default_request: &'static str,
    /// Column: default limit.
    pub default_limit: &'static str,
    /// Column: maximum.
    pub max: &'static str,
    /// Pods heading.
    pub pods: &'static str,
    /// No pods.
    pub no_pods: &'static str,
    /// Workloads heading.
    pub workloads: &'static str,
    /// The kubectl section's heading.
    pub kubectl: &'static str,
    /// What the kubeconfig is (followed by its lifetime in hours).
    pub kubectl_help: &'static str,
    /// Hours, after the number.
    pub hours: &'static str,
    /// The download button.
    pub download_kubeconfig: &'static str,
    /// Before the commands.
    pub kubectl_then: &'static str,
    /// Page not found.
    pub not_found: &'static str,
    /// The cluster did not answer.
    pub unavailable: &'static str,
    /// Critical.
    pub critical: &'static str,
    /// Warning.
    pub warning: &'static str,
    // The apps page (actions).
    /// The metrics section.
    pub metrics: &'static str,
    /// No metrics API.
    pub metrics_unavailable: &'static str,
    /// Memory.
    pub memory: &'static str,
    /// The workload plan instances on the overview.
    pub workload_plans: &'static str,
    /// The apps page: its heading and link.
    pub apps: &'static str,
    /// The apps cannot be read with this identity.
    pub apps_unreadable: &'static str,
    /// A viewer gets no controls.
    pub apps_view_only: &'static str,
    /// No app.
    pub no_apps: &'static str,
    /// No metrics API: autoscalers cannot act.
    pub metrics_missing: &'static str,
    /// An app's state.
    pub app_state: &'static str,
    /// Ready.
    pub app_ready: &'static str,
    /// Not all pods ready.
    pub app_starting: &'static str,
    /// Scaled to zero.
    pub app_stopped: &'static str,
    /// Failed.
    pub app_failed: &'static str,
    /// Images.
    pub app_images: &'static str,
    /// The workload plan's state, as the platform reads it.
    pub app_plan_state: &'static str,
    /// After an action.
    pub app_requested: &'static str,
    /// Before the reason an action was not done.
    pub app_refused: &'static str,
    /// Start.
    pub start: &'static str,
    /// Stop.
    pub stop: &'static str,
    /// Restart.
    pub restart: &'static str,
    /// Scale.
    pub scale: &'static str,
    /// Autoscale.
    pub autoscale: &'static str,
    /// Remove the autoscaler.
    pub stop_autoscaling: &'static str,
    /// Fewest pods.
    pub min: &'static str,
    /// Most pods.
    pub max_pods: &'static str,
    /// Delete.
    pub delete: &'static str,
    /// Before the delete button.
    pub delete_warning: &'static str,
    /// What to do, by alert kind.
    advice: [(AlertKind, &'static str); 15],
    /// Quota resources in words (raw name, words); a resource not listed shows its raw name.
    quota_names: [(&'static str, &'static str); 19],
    /// Kinds of object in words (API resource, kind, one, many); a kind not listed shows as it is.
    kind_names: [(&'static str, &'static str, &'static str, &'static str); 15],
    // The live workloads view (workloads, YAML, pod logs).
    /// The workloads page's heading and the link to it.
    pub live_workloads: &'static str,
    /// The link back to the overview.
    pub live_overview: &'static str,
    /// A kind the signed-in identity may not list.
    pub live_not_allowed: &'static str,
    /// A kind with no object.
    pub live_none: &'static str,
    /// Column: name.
    pub live_name: &'static str,
    /// Column: status.
    pub live_status: &'static str,
    /// Column: ready of desired.
    pub live_ready: &'static str,
    /// Column: restarts (events: count).
    pub live_restarts: &'static str,
    /// Column: age.
    pub live_age: &'static str,
    /// Column: images, addresses, message.
    pub live_detail: &'static str,
    /// What keeps the page current, and what to do without scripts.
    pub live_hint: &'static str,
    /// Pod logs: the link and the heading.
    pub live_logs: &'static str,
    /// The container choice.
    pub live_container: &'static str,
    /// The button that shows the chosen container's logs.
    pub live_show: &'static str,
    /// How many lines are shown, and that they follow.
    pub live_logs_hint: &'static str,
    /// The apiserver gave no logs (the container has not started, or its node keeps none).
    pub live_no_logs: &'static str,
    /// No such object, or not one this identity may see.
    pub live_no_such_object: &'static str,
    // --- Members and sign-in through an identity provider (access) ---
    /// Members heading and the overview's link to them.
    pub members: &'static str,
    /// Column: a member's name.
    pub member_name: &'static str,
    /// Column: a member's role.
    pub role: &'static str,
    /// Marks the owner.
    pub owner: &'static str,
    /// What a member is.
    pub members_help: &'static str,
    /// Said to those who may not manage members (and, unless Kubernetes lets them list RoleBindings, see none).
    pub members_read_only: &'static str,
    /// The invite button.
    pub invite: &'static str,
    /// The change-role button.
    pub change_role: &'static str,
    /// The remove button.
    pub revoke: &'static str,
    /// A name or role that is not valid.
    pub invalid_member: &'static str,
    /// Inviting someone who is a member already.
    pub already_member: &'static str,
    /// Changing or removing someone who is not a member.
    pub no_such_member: &'static str,
    /// A request to manage members from someone who may not.
    pub members_forbidden: &'static str,
    /// The button of the generic OpenID Connect provider.
    pub sign_in_oidc: &'static str,
    /// The button of Cloud Foundry's single sign-on.
    pub sign_in_cf: &'static str,
    /// Before the token form, when providers are offered.
    pub or_token: &'static str,
    /// Signed in at the provider, but not a member.
    pub not_invited: &'static str,
    /// Cloud Foundry gives no permission on the instance.
    pub cf_no_permission: &'static str,
    /// A sign-in that expired, was tampered with or replayed.
    pub login_failed: &'static str,
    /// The provider or the Cloud Controller does not answer.
    pub provider_unavailable: &'static str,
    /// A member changed by someone else at the same moment.
    pub changed_meanwhile: &'static str,
    // The streaming session's page.
    /// The session page's title.
    pub session_page: &'static str,
    /// The session's virtual display size.
    pub resolution: &'static str,
    /// What the session's state line is, in the platform's words.
    pub session_state_hint: &'static str,
    /// The heading of the SteamCMD install's log.
    pub session_install_log: &'static str,
    /// A session whose image holds its application: nothing to install.
    pub session_no_install: &'static str,
    /// The VNC password's label.
    pub session_password: &'static str,
    /// The button that reveals the password.
    pub session_reveal: &'static str,
    /// The button that opens noVNC.
    pub session_open: &'static str,
    /// How Open passes the password.
    pub session_open_hint: &'static str,
    /// A session without an Ingress: Open goes through the dashboard.
    pub session_no_ingress: &'static str,
    /// The link to a session's page from the lists.
    pub session_link: &'static str,
    /// Kubernetes does not let the user reach the session's Service through its proxy.
    pub session_proxy_refused: &'static str,
    /// No ready pod answers behind the session's Service.
    pub session_not_running: &'static str,
    /// The session serves a noVNC the dashboard does not know.
    pub session_novnc_unknown: &'static str,
    /// The session serves a Selkies client the dashboard does not know.
    pub session_selkies_unknown: &'static str,
    /// A session the broker stopped for want of a viewer: the words before and after its minutes.
    pub session_idle_stopped: (&'static str, &'static str),
    /// How Open wakes a stopped session.
    pub session_wake_hint: &'static str,
    /// The embedded stream's title.
    pub stream: &'static str,
    /// Said over the stream's frame until its first frame shows.
    pub stream_waiting: &'static str,
    /// The button that shows the stream full screen.
    pub stream_fullscreen: &'static str,
    /// The button that turns the stream's sound off, and back on.
    pub stream_sound: (&'static str, &'static str),
    /// Said when the browser sees a game controller.
    pub stream_gamepad: &'static str,
    /// The overlay's labels: latency, frames per second, bitrate.
    pub stream_stats: (&'static str, &'static str, &'static str),
    /// The user already holds as many live pages, followed logs and noVNC connections open as they may.
    pub too_many_streams: &'static str,
    // --- Deploy form and endpoint tester (deploy) ---
    /// The deploy page's heading and the overview's link to it.
    pub deploy: &'static str,
    /// What the deploy page does before anything changes.
    pub deploy_help: &'static str,
    /// The app name field.
    pub app_name: &'static str,
    /// The image field.
    pub image: &'static str,
    /// The container port field.
    pub container_port: &'static str,
    /// The environment variables field.
    pub env_lines: &'static str,
    /// The CPU request field.
    pub cpu_request: &'static str,
    /// The CPU limit field.
    pub cpu_limit: &'static str,
    /// The memory request field.
    pub memory_request: &'static str,
    /// The memory limit field.
    pub memory_limit: &'static str,
    /// Where the size fields' starting values come from.
    pub limits_prefilled: &'static str,
    /// The optional Ingress host field.
    pub ingress_host: &'static str,
    /// The autoscaling checkbox.
    pub autoscale_on: &'static str,
    /// The autoscaler's CPU target field.
    pub cpu_percent: &'static str,
    /// The dry-run button.
    pub dry_run: &'static str,
    /// The deploy button.
    pub deploy_now: &'static str,
    /// Above the preview when the cluster would accept the app.
    pub dry_run_ok: &'static str,
    /// Above the cluster's refusals.
    pub dry_run_refused: &'static str,
    /// Above the form's own errors.
    pub form_invalid: &'static str,
    /// A refusal about the whole app rather than one field.
    pub whole_app: &'static str,
    /// Heading of a deployed app's live progress.
    pub deploy_progress: &'static str,
    /// Progress of an app that does not exist (or cannot be read).
    pub no_such_app: &'static str,
    /// The endpoint tester's heading and the overview's link to it.
    pub try_endpoint: &'static str,
    /// What the tester reaches, and how.
    pub try_help: &'static str,
    /// The target choice.
    pub target: &'static str,
    /// The Service port field.
    pub service_port: &'static str,
    /// The path field.
    pub request_path: &'static str,
    /// The method choice.
    pub method: &'static str,
    /// The headers field.
    pub request_headers: &'static str,
    /// The body field.
    pub request_body: &'static str,
    /// The send button.
    pub send: &'static str,
    /// The answer's HTTP status.
    pub answer_status: &'static str,
    /// The answer's latency.
    pub latency: &'static str,
    /// The answer's headers.
    pub answer_headers: &'static str,
    /// An answer cut at the size cap.
    pub answer_truncated: &'static str,
    /// A namespace without a Service or Ingress to try.
    pub no_targets: &'static str,
    /// Before why a request was not sent.
    pub try_refused: &'static str,
    /// Before why nothing can answer.
    pub try_no_endpoint: &'static str,
    /// Before Kubernetes' refusal of the identity.
    pub try_denied: &'static str,
    /// Before why no answer came.
    pub try_failed: &'static str,
    /// The deploy page of an identity Kubernetes does not let deploy.
    pub deploy_view_only: &'static str,
    /// CPU in cores, after a number.
    pub cores: &'static str,
    /// Quota column: what the metrics API measures in use now.
    pub in_use_now: &'static str,
    /// What requests reserve.
    pub reserved: &'static str,
    /// Before a pod's or workload's request.
    pub usage_request: &'static str,
    /// Before a pod's or workload's limit.
    pub usage_limit: &'static str,
    /// A pod or workload without a request.
    pub no_request: &'static str,
    /// A pod or workload without a limit.
    pub no_limit: &'static str,
    /// Column: a Deployment or StatefulSet.
    pub workload: &'static str,
    /// In a sparkline's title: over the last hour.
    pub last_hour: &'static str,
    /// A pod without samples yet.
    pub history_collecting: &'static str,
    /// In a sparkline's title: the latest sample.
    pub spark_now: &'static str,
    /// In a sparkline's title: the highest sample.
    pub spark_max: &'static str,
    /// In a sparkline's title: the lowest sample.
    pub spark_min: &'static str,
    /// In a sparkline's title: how many samples.
    pub spark_samples: &'static str,
    /// The quota's in-use-now of a cluster without a metrics API.
    pub in_use_unavailable: &'static str,
    /// The month usage card.
    pub month_usage: &'static str,
    /// What the month usage card counts.
    pub month_usage_help: &'static str,
    /// The month's usage cannot be read.
    pub month_unavailable: &'static str,
    /// A unit: cores times hours.
    pub core_hours: &'static str,
    /// A unit: GiB times hours.
    pub gib_hours: &'static str,
    /// A unit: GPUs times hours.
    pub gpu_hours: &'static str,
    /// A unit: hours.
    pub hours_unit: &'static str,
    /// Storage claimed.
    pub storage: &'static str,
    /// Streaming sessions' pods running.
    pub streaming_sessions: &'static str,
    /// The autoscalers' live section.
    pub autoscalers: &'static str,
    /// Column: the app an autoscaler scales.
    pub autoscaler_app: &'static str,
    /// Column: CPU measured of the target.
    pub autoscaler_cpu: &'static str,
    /// Column: pods now and wanted.
    pub autoscaler_pods: &'static str,
    /// Column: fewest to most pods.
    pub autoscaler_range: &'static str,
    /// An autoscaler that has measured nothing yet.
    pub autoscaler_unmeasured: &'static str,
    /// An autoscaler that cannot compute a scale.
    pub autoscaler_inactive: &'static str,
    /// No autoscaler in the namespace.
    pub no_autoscalers: &'static str,
    /// The identity may not read autoscalers.
    pub autoscalers_unreadable: &'static str,
    // The YAML editor.
    /// The control that opens an object's YAML editor.
    pub edit: &'static str,
    /// What the editor does.
    pub edit_help: &'static str,
    /// The label of the YAML text area.
    pub edit_yaml_label: &'static str,
    /// The button that asks the cluster what the edit would change (a dry run).
    pub edit_review: &'static str,
    /// The button that applies the edit.
    pub edit_apply: &'static str,
    /// Back to the object without changing it.
    pub edit_cancel: &'static str,
    /// Heading of the changes an edit would make.
    pub edit_changes: &'static str,
    /// An edit that changes nothing.
    pub edit_no_changes: &'static str,
    /// A field the edit adds.
    pub edit_added: &'static str,
    /// A field the edit removes.
    pub edit_removed: &'static str,
    /// YAML that cannot be used.
    pub edit_invalid: &'static str,
    /// The cluster refuses the edit (RBAC, admission, validation).
    pub edit_refused: &'static str,
    /// Fields of the edit that other field managers own.
    pub edit_conflict: &'static str,
    /// Column: a field in conflict.
    pub edit_conflict_field: &'static str,
    /// Column: who manages it.
    pub edit_conflict_manager: &'static str,
    /// The object changed since the editor was opened.
    pub edit_stale: &'static str,
    /// The identity may not change the object.
    pub edit_not_allowed: &'static str,
    /// YAML over the size limit.
    pub edit_too_large: &'static str,
    /// The edit was applied.
    pub edit_applied: &'static str,
    // The terminal into a container.
    /// A terminal into a container: the control and the page's heading.
    pub terminal: &'static str,
    /// The shell to run.
    pub terminal_shell: &'static str,
    /// Opens the terminal with the chosen container and shell.
    pub terminal_open: &'static str,
    /// The terminal's limits; `{idle}` and `{longest}` are minutes.
    pub terminal_limits: &'static str,
    /// The accessible name of the terminal's screen.
    pub terminal_screen: &'static str,
    /// While the terminal connects.
    pub terminal_connecting: &'static str,
    /// Once it is connected.
    pub terminal_connected: &'static str,
    /// Closed, for no reason the dashboard gave.
    pub terminal_closed: &'static str,
    /// Closed after no input for too long.
    pub terminal_closed_idle: &'static str,
    /// Closed at the longest length allowed.
    pub terminal_closed_longest: &'static str,
    /// Closed because the sign-in ended or the permission went.
    pub terminal_closed_revoked: &'static str,
    /// Closed because the shell ended.
    pub terminal_closed_exited: &'static str,
    /// Closed because the shell could not start.
    pub terminal_closed_failed: &'static str,
    /// Downloads what the terminal showed.
    pub terminal_download: &'static str,
    /// The identity may not open terminals.
    pub terminal_not_allowed: &'static str,
    /// No container runs in the pod.
    pub terminal_no_container: &'static str,
    /// Adds a debug container and opens a terminal into it.
    pub terminal_debug: &'static str,
    /// The container a debug container sits beside.
    pub terminal_debug_target: &'static str,
    /// What a debug container is.
    pub terminal_debug_hint: &'static str,
    /// The debug container did not start in time.
    pub terminal_debug_late: &'static str,
    /// The identity may not add debug containers.
    pub terminal_debug_not_allowed: &'static str,
    // The events timeline, search and the map.
    /// The events page and its nav link.
    pub events: &'static str,
    /// What the events page shows.
    pub events_help: &'static str,
    /// The filter: the kind of object events are about.
    pub events_kind: &'static str,
    /// The filter: the event's type.
    pub events_type: &'static str,
    /// A filter's choice: everything.
    pub events_any: &'static str,
    /// An event's type: normal.
    pub events_normal: &'static str,
    /// An event's type: warning (beside its marker).
    pub events_warning: &'static str,
    /// The filter's button.
    pub events_show: &'static str,
    /// No event (after the filter).
    pub events_none: &'static str,
    /// Before `shown / matched`: only the newest events are shown.
    pub events_cut: &'static str,
    /// Right after an event's count (`3×`): how often it happened.
    pub events_times: &'static str,
    /// After an event's age (`5m`): ago.
    pub events_ago: &'static str,
    /// On the workloads page: events have a page of their own.
    pub events_elsewhere: &'static str,
    /// The search page, its nav link and button.
    pub search: &'static str,
    /// The search box's label.
    pub search_label: &'static str,
    /// What a search finds.
    pub search_help: &'static str,
    /// Nothing found.
    pub search_none: &'static str,
    /// More found than shown.
    pub search_cut: &'static str,
    /// A search longer than allowed.
    pub search_too_long: &'static str,
    /// Column: the object's kind.
    pub search_kind: &'static str,
    /// Column: the object's labels.
    pub search_labels: &'static str,
    /// The map page and its nav link.
    pub map: &'static str,
    /// What the map shows.
    pub map_help: &'static str,
    /// Heading of the map as a list.
    pub map_list: &'static str,
    /// After a number: objects on the map.
    pub map_objects: &'static str,
    /// After a number: relations on the map.
    pub map_links: &'static str,
    /// A map of nothing.
    pub map_empty: &'static str,
    /// More objects than the map shows.
    pub map_cut: &'static str,
    /// Before the kinds the identity may not list.
    pub map_left_out: &'static str,
    /// A relation: an Ingress sends requests to a Service.
    pub map_routes_to: &'static str,
    /// A relation: a Service sends requests to a pod.
    pub map_selects: &'static str,
    /// A relation: an owner made the object.
    pub map_owns: &'static str,
    /// A relation: a pod mounts a claim.
    pub map_mounts: &'static str,
    /// A relation: a claim is bound to a volume.
    pub map_bound_to: &'static str,
    /// A relation: an autoscaler scales its target.
    pub map_scales: &'static str,
}

impl Translation {
    /// Who is signed in, as its users name it: "owner", "binding ceo-admin (admin)", "member kim@example (edit)" —
    /// the role in brackets when it is not the owner's (the owner is always `admin`).
    pub fn signer(&self, signer: &Signer, role: Option<&str>) -> String {
        let role = role.map(|role| format!(" ({role})")).unwrap_or_default();
        match signer {
            Signer::Owner => self.signer_owner.to_owned(),
            Signer::Binding(id) => format!("{} {id}{role}", self.signer_binding),
            Signer::Member(name) => format!("{} {name}{role}", self.signer_member),
        }
    }

    /// A quota resource in words ("CPU reserved" for `requests.cpu`), or its raw name when it has none: people who
    /// do not know Kubernetes read the card; the raw name stays on hover.
    pub fn quota_name<'a>(&self, resource: &'a str) -> &'a str {
        self.quota_names.iter().find(|(raw, _)| *raw == resource).map_or(resource, |(_, words)| words)
    }

    /// One object of `kind` in words ("Volume claim"), named by its API resource (`persistentvolumeclaims`) or its
    /// kind (`PersistentVolumeClaim`); as it is when it has none.
    pub fn kind_one<'a>(&self, kind: &'a str) -> &'a str {
        self.kind_names.iter().find(|(resource, name, _, _)| *resource == kind || *name == kind).map_or(kind, |k| k.2)
    }

    /// Objects of `kind` in words ("Volume claims"), as [`Translation::kind_one`] names them.
    pub fn kind_many<'a>(&self, kind: &'a str) -> &'a str {
        self.kind_names.iter().find(|(resource, name, _, _)| *resource == kind || *name == kind).map_or(kind, |k| k.3)
    }

    /// What to do about an alert of `kind`.
    pub fn advice(&self, kind: AlertKind) -> &'static str {
        self.advice.iter().find(|(k, _)| *k == kind).map_or("", |(_, text)| text)
    }

    /// The name of a severity.
    pub fn severity(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::Critical => self.critical,
            Severity::Warning => self.warning,
        }
    }
}

/// English.
pub static EN: Translation = Translation {
    lang: "en",
    product: "Virtual cluster",
    sign_in: "Sign in",
    token_label: "Token",
    token_help: "Paste a token of this instance: the token of one of its bindings (credentials.token) or the owner's.",
    sign_in_button: "Sign in",
    refused: "This token does not open this instance.",
    kubeconfig_token_refused: "This is a downloaded kubeconfig's token: use it with kubectl. To sign in, use the token you were given (or your identity provider).",
    too_many_sign_ins: "Too many sign-in attempts. Wait a minute, then try again.",
    sessions_full: "The dashboard has as many people signed in as it may. Try again later.",
    kubeconfig_too_late: "Your sign-in's token ends within 10 minutes, too soon for a kubeconfig. Sign in again with a fresh token, then download it.",
    other_instance: "You are signed in to another instance. Sign out first.",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    try_view_only: "Your role lets you view this namespace only: sending requests to its apps needs the edit or admin role.",
    pods_logs: "Logs of its pods",
    pods_logs_cut: "Pods shown / in all:",
    pods_no_logs: "No lines: the pods have not written any (that the filter keeps), or their node keeps none.",
    log_filter_text: "Lines holding",
    log_filter_level: "Severity",
    log_level_all: "All lines",
    log_level_warning: "Warnings and errors",
    log_level_error: "Errors only",
    signer_owner: "owner",
    signer_binding: "binding",
    signer_member: "member",
    plan: "Plan",
    namespace: "Namespace",
    alerts: "Alerts",
    no_alerts: "Nothing abnormal.",
    quota: "Quota",
    resource: "Resource",
    used: "Used",
    hard: "Limit",
    defaults: "Container defaults",
    default_request: "Default request",
    default_limit: "Default limit",
    max: "Maximum",
    pods: "Pods",
    no_pods: "No pods.",
    workloads: "Workloads",
    kubectl: "kubectl",
    kubectl_help: "A kubeconfig for your own identity, in this namespace only, with the same rights as here. Its token works no longer than your sign-in's, and at most",
    hours: "hour(s)",
    download_kubeconfig: "Download kubeconfig",
    kubectl_then: "Then, in the folder you saved it to:",
    not_found: "There is nothing here.",
    unavailable: "The cluster does not answer right now; try again in a moment.",
    critical: "Critical",
    warning: "Warning",
    // The apps page (actions).
    metrics: "CPU and memory",
    metrics_unavailable: "Metrics are unavailable: this cluster serves no metrics API (metrics.k8s.io), so use is not measured — it is not zero.",
    memory: "Memory",
    workload_plans: "Workload plans",
    apps: "Apps",
    apps_unreadable: "Your identity may not read the apps of this virtual cluster.",
    apps_view_only: "Your role lets you view these apps only.",
    no_apps: "No Deployment or StatefulSet yet.",
    metrics_missing: "This cluster serves no metrics API (metrics.k8s.io): an autoscaler can be set but will not scale until a metrics server runs.",
    app_state: "State",
    app_ready: "Ready",
    app_starting: "Starting",
    app_stopped: "Stopped",
    app_failed: "Failed",
    app_images: "Images",
    app_plan_state: "Service state",
    app_requested: "Requested:",
    app_refused: "Not done:",
    start: "Start",
    stop: "Stop",
    restart: "Restart",
    scale: "Scale",
    autoscale: "Autoscale",
    stop_autoscaling: "Stop autoscaling",
    min: "Min",
    max_pods: "Max",
    delete: "Delete",
    delete_warning: "This deletes the app and its pods; it cannot be undone.",
    kind_names: [
        ("deployments", "Deployment", "Deployment", "Deployments"),
        ("statefulsets", "StatefulSet", "StatefulSet", "StatefulSets"),
        ("replicasets", "ReplicaSet", "ReplicaSet", "ReplicaSets"),
        ("daemonsets", "DaemonSet", "DaemonSet", "DaemonSets"),
        ("jobs", "Job", "Job", "Jobs"),
        ("cronjobs", "CronJob", "Scheduled job", "Scheduled jobs"),
        ("pods", "Pod", "Pod", "Pods"),
        ("services", "Service", "Service", "Services"),
        ("ingresses", "Ingress", "Ingress", "Ingresses"),
        ("persistentvolumeclaims", "PersistentVolumeClaim", "Volume claim", "Volume claims"),
        ("persistentvolumes", "PersistentVolume", "Volume", "Volumes"),
        ("horizontalpodautoscalers", "HorizontalPodAutoscaler", "Autoscaler", "Autoscalers"),
        ("configmaps", "ConfigMap", "Config map", "Config maps"),
        ("secrets", "Secret", "Secret", "Secrets"),
        ("events", "Event", "Event", "Events"),
    ],
    quota_names: [
        ("requests.cpu", "CPU reserved"),
        ("limits.cpu", "CPU limit"),
        ("requests.memory", "Memory reserved"),
        ("limits.memory", "Memory limit"),
        ("requests.nvidia.com/gpu", "GPUs"),
        ("requests.storage", "Storage"),
        ("persistentvolumeclaims", "Volumes"),
        ("pods", "Pods"),
        ("services", "Services"),
        ("services.loadbalancers", "Load balancers"),
        ("services.nodeports", "Node ports"),
        ("count/deployments.apps", "Deployments"),
        ("count/statefulsets.apps", "StatefulSets"),
        ("count/jobs.batch", "Jobs"),
        ("count/ingresses.networking.k8s.io", "Ingresses"),
        ("count/secrets", "Secrets"),
        ("count/configmaps", "Config maps"),
        ("cpu", "CPU"),
        ("memory", "Memory"),
    ],
    advice: [
        (
            AlertKind::CrashLoop,
            "The container keeps exiting: read its logs (kubectl logs --previous) and fix the command or its configuration.",
        ),
        (
            AlertKind::ImagePull,
            "The image cannot be pulled: check its name and tag, and that the registry is reachable and allows the pull.",
        ),
        (
            AlertKind::ContainerConfig,
            "The container cannot be created: a ConfigMap, Secret or key it refers to is missing.",
        ),
        (AlertKind::OutOfMemory, "The container used more memory than its limit: raise the limit or lower its use."),
        (
            AlertKind::RolloutStuck,
            "The rollout made no progress: look at the new pods' alerts and events, or roll back.",
        ),
        (
            AlertKind::ReplicaFailure,
            "Pods cannot be created: usually the quota; free resources or choose a larger plan.",
        ),
        (
            AlertKind::FailedScheduling,
            "No node can take the pod: lower its requests, or check its node selector and tolerations.",
        ),
        (
            AlertKind::FailedCreate,
            "An object could not be created: usually the quota; free resources or choose a larger plan.",
        ),
        (
            AlertKind::Unhealthy,
            "A probe fails: check the probe's path and port and that the application answers in time.",
        ),
        (
            AlertKind::QuotaExhausted,
            "This resource is used up: new workloads needing it are refused. Free some or choose a larger plan.",
        ),
        (
            AlertKind::QuotaNearlyExhausted,
            "This resource is almost used up: plan for it before new workloads are refused.",
        ),
        (AlertKind::ClaimPending, "The volume claim waits for a volume: check its storage class and size."),
        (
            AlertKind::Restarting,
            "The container restarted several times lately: read the previous run's logs (kubectl logs --previous) and check its memory limit and probes.",
        ),
        (
            AlertKind::AutoscalerStuck,
            "The autoscaler cannot scale: it needs a metrics API (metrics.k8s.io) and CPU requests on the pods, and a target that exists.",
        ),
        (
            AlertKind::Repaired,
            "Part of this virtual cluster's isolation was deleted or changed outside the broker, and the broker restored it. Change the plan or parameters through the platform (cf update-service), not in the cluster.",
        ),
    ],
    // The live workloads view (workloads, YAML, pod logs).
    live_workloads: "Workloads",
    live_overview: "Overview",
    live_not_allowed: "Not allowed for this identity.",
    live_none: "None.",
    live_name: "Name",
    live_status: "Status",
    live_ready: "Ready",
    live_restarts: "Restarts",
    live_age: "Age",
    live_detail: "Details",
    live_hint: "This page updates itself as things change; without JavaScript, reload it.",
    live_logs: "Logs",
    live_container: "Container",
    live_show: "Show",
    live_logs_hint: "The last lines, following as the container writes (without JavaScript, reload for more).",
    live_no_logs: "No logs: the container has not started, or its node keeps none.",
    live_no_such_object: "No such object, or not one this identity may see.",
    // --- Members and sign-in through an identity provider (access) ---
    members: "Members",
    member_name: "Name",
    role: "Role",
    owner: "owner",
    members_help: "People sign in to this virtual cluster with their identity provider under the name it gives them \
                   (for example their email). Roles: admin (everything, including members), edit (workloads), view \
                   (read only).",
    members_read_only: "Only an admin of this virtual cluster manages its members: ask one to invite someone or to \
                        change a role.",
    invite: "Invite",
    change_role: "Change role",
    revoke: "Remove",
    invalid_member: "Check the name (1 to 256 bytes, no control characters or surrounding spaces, not starting with \
                     cf:) and the role (admin, edit or view). Nothing was changed.",
    already_member: "This person is already a member: change their role instead.",
    no_such_member: "There is no such member (or it is the owner, who cannot be changed or removed here).",
    members_forbidden: "Only an admin of this virtual cluster may manage its members.",
    sign_in_oidc: "Sign in with your organization's account",
    sign_in_cf: "Sign in with Cloud Foundry",
    or_token: "Or sign in with a token:",
    not_invited: "You are signed in at the identity provider, but you are not a member of this virtual cluster. Ask \
                  an admin of the virtual cluster for an invitation.",
    cf_no_permission: "Cloud Foundry does not give you access to this service instance. Ask a manager of its space \
                       for access.",
    login_failed: "The sign-in could not be completed: it expired, was already used or was tampered with. Start \
                   again from the sign-in page.",
    provider_unavailable: "The identity provider or Cloud Foundry does not answer. Try again in a moment.",
    changed_meanwhile: "Someone changed this member at the same moment: check the list and try again.",
    // The streaming session's page.
    session_page: "Streaming session",
    resolution: "Resolution",
    session_state_hint: "The same words the platform shows for this instance.",
    session_install_log: "Install progress (SteamCMD)",
    session_no_install: "The session's image holds its application: nothing is installed.",
    session_password: "VNC password",
    session_reveal: "Show the password",
    session_open: "Open",
    session_open_hint: "Opens noVNC in a new tab and signs in: the password goes in the part of the address after #, \
                        which the browser sends to no server.",
    session_no_ingress: "The session has no Ingress: the dashboard carries it to your browser.",
    session_link: "Open the session's page",
    session_proxy_refused: "Kubernetes does not let you reach this session's Service (services/proxy).",
    session_not_running: "The session does not answer: it is stopped or still starting.",
    session_novnc_unknown: "This session serves a noVNC the dashboard does not know (only noVNC 1.3.0 is passed on here); open it through its Ingress.",
    session_selkies_unknown: "This session serves a Selkies client the dashboard does not know (only Selkies 2.1.0 is passed on here); open it through its Ingress.",
    session_idle_stopped: ("Stopped after", "minutes without a viewer."),
    session_wake_hint: "Open starts it again (its volume was kept); the stream shows once its first frame arrives.",
    stream: "The session's stream",
    stream_waiting: "Waiting for the first frame…",
    stream_fullscreen: "Full screen",
    stream_sound: ("Sound off", "Sound on"),
    stream_gamepad: "Gamepad detected",
    stream_stats: ("latency", "frames/s", "Mbit/s"),
    too_many_streams: "You have too many live pages, followed logs or session windows open at once: close some of them (in other tabs too), then reload this page.",
    // --- Deploy form and endpoint tester (deploy) ---
    deploy: "Deploy a container",
    deploy_help: "Before anything is made, the cluster checks every field in a dry run as you (permissions, quota, limits, Pod Security). Deploying again with the same name updates the app.",
    app_name: "Name",
    image: "Image",
    container_port: "Container port",
    env_lines: "Environment variables (NAME=value, one a line)",
    cpu_request: "CPU request",
    cpu_limit: "CPU limit",
    memory_request: "Memory request",
    memory_limit: "Memory limit",
    limits_prefilled: "Sizes start from this virtual cluster's defaults (its LimitRange).",
    ingress_host: "Ingress host (optional)",
    autoscale_on: "Autoscale on CPU use",
    cpu_percent: "CPU target (%)",
    dry_run: "Check (dry run)",
    deploy_now: "Deploy",
    dry_run_ok: "The cluster would accept this. Exactly this will be applied:",
    dry_run_refused: "The cluster refuses this; nothing was changed:",
    form_invalid: "Some fields are not valid; nothing was changed.",
    whole_app: "The app",
    deploy_progress: "Progress",
    no_such_app: "There is no such app (deleted, or not visible to this identity).",
    try_endpoint: "Try an endpoint",
    try_help: "The dashboard sends the request as you, through the Kubernetes API's service proxy, and only to a Service or Ingress of this namespace: never to another namespace, the API server, the host or the internet.",
    target: "Target",
    service_port: "Service port",
    request_path: "Path",
    method: "Method",
    request_headers: "Headers (Name: value, one a line)",
    request_body: "Body",
    send: "Send",
    answer_status: "Status",
    latency: "Latency",
    answer_headers: "Headers",
    answer_truncated: "The answer was longer than 256 KiB; the rest was dropped.",
    no_targets: "There is no Service or Ingress to try yet.",
    try_refused: "Not sent:",
    try_no_endpoint: "Nothing can answer:",
    try_denied: "Kubernetes refused this identity:",
    try_failed: "No answer:",
    deploy_view_only: "Your role does not let you deploy here (Kubernetes refuses it, dry runs too).",
    cores: "cores",
    in_use_now: "In use now",
    reserved: "Reserved",
    usage_request: "request",
    usage_limit: "limit",
    no_request: "no request",
    no_limit: "no limit",
    workload: "Workload",
    last_hour: "last hour",
    history_collecting: "History is being collected.",
    spark_now: "now",
    spark_max: "highest",
    spark_min: "lowest",
    spark_samples: "samples",
    in_use_unavailable: "unavailable (no metrics API)",
    month_usage: "Usage this month",
    month_usage_help: "Since the 1st of this month (UTC), as the broker accounts it: used is measured by the metrics API, reserved is what the pods request.",
    month_unavailable: "This month's usage cannot be read right now.",
    core_hours: "core-hours",
    gib_hours: "GiB-hours",
    gpu_hours: "GPU-hours",
    hours_unit: "hours",
    storage: "Storage",
    streaming_sessions: "Streaming sessions",
    autoscalers: "Autoscalers",
    autoscaler_app: "App",
    autoscaler_cpu: "CPU now / target",
    autoscaler_pods: "Pods now → wanted",
    autoscaler_range: "Min–max",
    autoscaler_unmeasured: "not measured",
    autoscaler_inactive: "cannot scale",
    no_autoscalers: "No autoscaler.",
    autoscalers_unreadable: "Your identity may not read autoscalers here.",
    // The YAML editor.
    edit: "Edit",
    edit_help: "Change the YAML, then review: the cluster checks the change as you, without applying it (a dry run), and shows each field it would change or why it refuses. Apply saves it in your name (server-side apply, field manager caas-dashboard); a field another tool manages is shown as a conflict, never taken over.",
    edit_yaml_label: "The object as YAML",
    edit_review: "Review changes",
    edit_apply: "Apply",
    edit_cancel: "Cancel",
    edit_changes: "What would change",
    edit_no_changes: "Nothing would change.",
    edit_added: "added",
    edit_removed: "removed",
    edit_invalid: "This YAML cannot be used; nothing was changed:",
    edit_refused: "The cluster refuses this change; nothing was changed:",
    edit_conflict: "Other tools manage fields you changed; nothing was forced or changed. Leave these fields as they are, or change them with the tool that manages them:",
    edit_conflict_field: "Field",
    edit_conflict_manager: "Managed by",
    edit_stale: "The object changed since you opened the editor; nothing was changed. Open the editor again to start from the current version.",
    edit_not_allowed: "Your identity may not change this object.",
    edit_too_large: "The YAML is longer than 256 KiB; nothing was changed.",
    edit_applied: "Your change was applied.",
    // The terminal into a container.
    terminal: "Terminal",
    terminal_shell: "Shell",
    terminal_open: "Open",
    terminal_limits: "Closes after {idle} minutes without input, and after {longest} minutes at most. The session log keeps the last 1 MiB the terminal showed.",
    terminal_screen: "Terminal screen",
    terminal_connecting: "Connecting…",
    terminal_connected: "Connected.",
    terminal_closed: "The terminal closed.",
    terminal_closed_idle: "Closed: no input for too long.",
    terminal_closed_longest: "Closed: the terminal reached the longest time allowed.",
    terminal_closed_revoked: "Closed: your sign-in ended, or your identity may no longer open terminals here.",
    terminal_closed_exited: "Closed: the shell ended.",
    terminal_closed_failed: "Closed: the shell could not be started in this container (does the image have it?).",
    terminal_download: "Download session log",
    terminal_not_allowed: "Your identity may not open a terminal here.",
    terminal_no_container: "No container of this pod is running.",
    terminal_debug: "Debug",
    terminal_debug_target: "Debug beside",
    terminal_debug_hint: "For images without a shell: adds a container with a shell beside the chosen one, seeing its processes. It stays in the pod (stopped when its time is up) until the pod is replaced.",
    terminal_debug_late: "The debug container did not start in time: see the pod's events, then try again.",
    terminal_debug_not_allowed: "Your identity may not add debug containers here.",
    // The events timeline, search and the map.
    events: "Events",
    events_help: "What Kubernetes reported about your objects, newest first and grouped by object; warnings are marked ⚠.",
    events_kind: "Object kind",
    events_type: "Type",
    events_any: "All",
    events_normal: "Normal",
    events_warning: "Warning",
    events_show: "Show",
    events_none: "No events.",
    events_cut: "Only the newest events are shown:",
    events_times: "×",
    events_ago: "ago",
    events_elsewhere: "Events are listed, newest first and grouped by object, on their own page:",
    search: "Search",
    search_label: "Name or label (key=value)",
    search_help: "Finds the objects whose name contains the text, or that carry a label: app=web, or only its key (app). ConfigMaps and Secrets are found by name only, never their contents.",
    search_none: "Nothing found.",
    search_cut: "More was found than is shown: make the search narrower.",
    search_too_long: "The search is too long.",
    search_kind: "Kind",
    search_labels: "Labels",
    map: "Map",
    map_help: "How your objects connect: the way in (Ingress) to services, the pods that answer them and what made those pods; volume claims to their volumes; autoscalers to what they scale.",
    map_list: "The map as a list",
    map_objects: "objects",
    map_links: "links",
    map_empty: "Nothing to map yet.",
    map_cut: "Too many objects: only the first are on the map.",
    map_left_out: "Not allowed for this identity, so not on the map:",
    map_routes_to: "routes to",
    map_selects: "sends to",
    map_owns: "owns",
    map_mounts: "mounts",
    map_bound_to: "is bound to",
    map_scales: "scales",
};

/// Korean.
pub static KO: Translation = Translation {
    lang: "ko",
    product: "가상 클러스터",
    sign_in: "로그인",
    token_label: "토큰",
    token_help: "이 인스턴스의 토큰을 붙여 넣으세요: 바인딩의 토큰(credentials.token) 또는 소유자의 토큰.",
    sign_in_button: "로그인",
    refused: "이 토큰으로는 이 인스턴스를 열 수 없습니다.",
    kubeconfig_token_refused: "내려받은 kubeconfig의 토큰입니다. kubectl에서 쓰세요. 로그인하려면 받은 토큰(또는 ID 공급자)을 쓰세요.",
    too_many_sign_ins: "로그인 시도가 너무 많습니다. 1분 뒤에 다시 시도하세요.",
    sessions_full: "대시보드에 로그인할 수 있는 사람 수가 다 찼습니다. 나중에 다시 시도하세요.",
    kubeconfig_too_late: "로그인에 쓴 토큰이 10분 안에 만료되어 kubeconfig를 만들 수 없습니다. 새 토큰으로 다시 로그인한 뒤 내려받으세요.",
    other_instance: "다른 인스턴스에 로그인되어 있습니다. 먼저 로그아웃하세요.",
    sign_out: "로그아웃",
    signed_in_as: "로그인 계정",
    try_view_only: "현재 역할로는 이 네임스페이스를 볼 수만 있습니다. 앱에 요청을 보내려면 edit 또는 admin 역할이 필요합니다.",
    pods_logs: "파드 로그 모아 보기",
    pods_logs_cut: "표시한 파드 / 전체:",
    pods_no_logs: "줄이 없습니다. 파드가 (필터에 맞는) 로그를 남기지 않았거나 노드가 로그를 보관하지 않습니다.",
    log_filter_text: "포함할 텍스트",
    log_filter_level: "심각도",
    log_level_all: "모든 줄",
    log_level_warning: "경고와 오류",
    log_level_error: "오류만",
    signer_owner: "소유자",
    signer_binding: "바인딩",
    signer_member: "멤버",
    plan: "플랜",
    namespace: "네임스페이스",
    alerts: "경고",
    no_alerts: "이상 없음.",
    quota: "쿼터",
    resource: "리소스",
    used: "사용량",
    hard: "한도",
    defaults: "컨테이너 기본값",
    default_request: "기본 요청",
    default_limit: "기본 한도",
    max: "최대",
    pods: "파드",
    no_pods: "파드가 없습니다.",
    workloads: "워크로드",
    kubectl: "kubectl",
    kubectl_help: "내 계정의 kubeconfig입니다. 이 네임스페이스에서만, 여기와 같은 권한으로 쓸 수 있습니다. 토큰은 로그인보다 오래 유효하지 않으며, 최대 유효 시간:",
    hours: "시간",
    download_kubeconfig: "kubeconfig 내려받기",
    kubectl_then: "저장한 폴더에서 다음을 실행하세요:",
    not_found: "여기에는 아무것도 없습니다.",
    unavailable: "지금은 클러스터가 응답하지 않습니다. 잠시 후 다시 시도하세요.",
    critical: "심각",
    warning: "주의",
    // The apps page (actions).
    metrics: "CPU와 메모리",
    metrics_unavailable: "메트릭을 사용할 수 없습니다: 이 클러스터에는 메트릭 API(metrics.k8s.io)가 없어 사용량을 측정하지 않습니다. 0이라는 뜻이 아닙니다.",
    memory: "메모리",
    workload_plans: "워크로드 플랜",
    apps: "앱",
    apps_unreadable: "이 ID로는 이 가상 클러스터의 앱을 읽을 수 없습니다.",
    apps_view_only: "현재 역할로는 앱을 볼 수만 있습니다.",
    no_apps: "아직 Deployment나 StatefulSet이 없습니다.",
    metrics_missing: "이 클러스터에는 메트릭 API(metrics.k8s.io)가 없습니다. 오토스케일러를 설정할 수는 있지만 메트릭 서버가 실행되기 전에는 스케일하지 않습니다.",
    app_state: "상태",
    app_ready: "준비됨",
    app_starting: "시작 중",
    app_stopped: "중지됨",
    app_failed: "실패",
    app_images: "이미지",
    app_plan_state: "서비스 상태",
    app_requested: "요청됨:",
    app_refused: "실행되지 않음:",
    start: "시작",
    stop: "중지",
    restart: "재시작",
    scale: "스케일",
    autoscale: "오토스케일",
    stop_autoscaling: "오토스케일 해제",
    min: "최소",
    max_pods: "최대",
    delete: "삭제",
    delete_warning: "앱과 파드를 삭제합니다. 되돌릴 수 없습니다.",
    kind_names: [
        ("deployments", "Deployment", "디플로이먼트", "디플로이먼트"),
        ("statefulsets", "StatefulSet", "스테이트풀셋", "스테이트풀셋"),
        ("replicasets", "ReplicaSet", "레플리카셋", "레플리카셋"),
        ("daemonsets", "DaemonSet", "데몬셋", "데몬셋"),
        ("jobs", "Job", "잡", "잡"),
        ("cronjobs", "CronJob", "예약 작업", "예약 작업"),
        ("pods", "Pod", "파드", "파드"),
        ("services", "Service", "서비스", "서비스"),
        ("ingresses", "Ingress", "인그레스", "인그레스"),
        ("persistentvolumeclaims", "PersistentVolumeClaim", "볼륨 클레임", "볼륨 클레임"),
        ("persistentvolumes", "PersistentVolume", "볼륨", "볼륨"),
        ("horizontalpodautoscalers", "HorizontalPodAutoscaler", "오토스케일러", "오토스케일러"),
        ("configmaps", "ConfigMap", "컨피그맵", "컨피그맵"),
        ("secrets", "Secret", "시크릿", "시크릿"),
        ("events", "Event", "이벤트", "이벤트"),
    ],
    quota_names: [
        ("requests.cpu", "예약된 CPU"),
        ("limits.cpu", "CPU 한도"),
        ("requests.memory", "예약된 메모리"),
        ("limits.memory", "메모리 한도"),
        ("requests.nvidia.com/gpu", "GPU"),
        ("requests.storage", "스토리지"),
        ("persistentvolumeclaims", "볼륨"),
        ("pods", "파드"),
        ("services", "서비스"),
        ("services.loadbalancers", "로드 밸런서"),
        ("services.nodeports", "노드 포트"),
        ("count/deployments.apps", "디플로이먼트"),
        ("count/statefulsets.apps", "스테이트풀셋"),
        ("count/jobs.batch", "잡"),
        ("count/ingresses.networking.k8s.io", "인그레스"),
        ("count/secrets", "시크릿"),
        ("count/configmaps", "컨피그맵"),
        ("cpu", "CPU"),
        ("memory", "메모리"),
    ],
    advice: [
        (
            AlertKind::CrashLoop,
            "컨테이너가 계속 종료됩니다: 로그(kubectl logs --previous)를 보고 명령이나 설정을 고치세요.",
        ),
        (AlertKind::ImagePull, "이미지를 받을 수 없습니다: 이름과 태그, 레지스트리 접근과 권한을 확인하세요."),
        (AlertKind::ContainerConfig, "컨테이너를 만들 수 없습니다: 참조하는 ConfigMap, Secret 또는 키가 없습니다."),
        (AlertKind::OutOfMemory, "컨테이너가 메모리 한도를 넘었습니다: 한도를 올리거나 사용량을 줄이세요."),
        (AlertKind::RolloutStuck, "롤아웃이 진행되지 않습니다: 새 파드의 경고와 이벤트를 보거나 롤백하세요."),
        (
            AlertKind::ReplicaFailure,
            "파드를 만들 수 없습니다: 대개 쿼터 때문입니다. 리소스를 비우거나 더 큰 플랜을 고르세요.",
        ),
        (
            AlertKind::FailedScheduling,
            "파드를 받을 노드가 없습니다: 요청량을 줄이거나 노드 셀렉터와 톨러레이션을 확인하세요.",
        ),
        (
            AlertKind::FailedCreate,
            "오브젝트를 만들 수 없습니다: 대개 쿼터 때문입니다. 리소스를 비우거나 더 큰 플랜을 고르세요.",
        ),
        (AlertKind::Unhealthy, "프로브가 실패합니다: 프로브의 경로와 포트, 애플리케이션 응답 시간을 확인하세요."),
        (
            AlertKind::QuotaExhausted,
            "이 리소스를 모두 썼습니다: 새 워크로드가 거부됩니다. 비우거나 더 큰 플랜을 고르세요.",
        ),
        (AlertKind::QuotaNearlyExhausted, "이 리소스가 거의 다 찼습니다: 새 워크로드가 거부되기 전에 대비하세요."),
        (AlertKind::ClaimPending, "볼륨 클레임이 볼륨을 기다립니다: 스토리지 클래스와 크기를 확인하세요."),
        (
            AlertKind::Restarting,
            "컨테이너가 최근 여러 번 재시작되었습니다: 이전 실행의 로그(kubectl logs --previous)를 읽고 메모리 한도와 프로브를 확인하세요.",
        ),
        (
            AlertKind::AutoscalerStuck,
            "오토스케일러가 스케일할 수 없습니다: 메트릭 API(metrics.k8s.io)와 파드의 CPU 요청, 그리고 존재하는 대상이 필요합니다.",
        ),
        (
            AlertKind::Repaired,
            "이 가상 클러스터의 격리 설정 일부가 브로커 밖에서 삭제되거나 변경되어 브로커가 복구했습니다. 플랜과 파라미터는 클러스터에서 직접 바꾸지 말고 플랫폼(cf update-service)으로 변경하세요.",
        ),
    ],
    // The live workloads view (workloads, YAML, pod logs).
    live_workloads: "워크로드",
    live_overview: "개요",
    live_not_allowed: "이 아이디로는 볼 수 없습니다.",
    live_none: "없음.",
    live_name: "이름",
    live_status: "상태",
    live_ready: "준비",
    live_restarts: "재시작",
    live_age: "경과",
    live_detail: "상세",
    live_hint: "이 페이지는 변경될 때마다 스스로 갱신됩니다. JavaScript가 없으면 새로 고치세요.",
    live_logs: "로그",
    live_container: "컨테이너",
    live_show: "보기",
    live_logs_hint: "마지막 줄들이며, 컨테이너가 쓰는 대로 이어집니다 (JavaScript가 없으면 새로 고치세요).",
    live_no_logs: "로그가 없습니다: 컨테이너가 시작되지 않았거나 노드가 로그를 보관하지 않습니다.",
    live_no_such_object: "그런 오브젝트가 없거나 이 아이디로 볼 수 없습니다.",
    // --- Members and sign-in through an identity provider (access) ---
    members: "멤버",
    member_name: "이름",
    role: "역할",
    owner: "소유자",
    members_help: "멤버는 ID 공급자가 부여한 이름(예: 이메일)으로 이 가상 클러스터에 로그인합니다. 역할: admin(멤버 \
                   관리를 포함한 모든 권한), edit(워크로드), view(읽기 전용).",
    members_read_only: "이 가상 클러스터의 멤버는 admin만 관리합니다: 초대나 역할 변경은 admin에게 요청하세요.",
    invite: "초대",
    change_role: "역할 변경",
    revoke: "제거",
    invalid_member: "이름(1~256바이트, 제어 문자나 앞뒤 공백 없이, cf:로 시작하지 않음)과 역할(admin, edit, view)을 \
                     확인하세요. 아무것도 바뀌지 않았습니다.",
    already_member: "이미 멤버입니다: 역할을 바꾸세요.",
    no_such_member: "그런 멤버가 없습니다(소유자는 여기서 바꾸거나 제거할 수 없습니다).",
    members_forbidden: "이 가상 클러스터의 admin만 멤버를 관리할 수 있습니다.",
    sign_in_oidc: "조직 계정으로 로그인",
    sign_in_cf: "Cloud Foundry 계정으로 로그인",
    or_token: "또는 토큰으로 로그인:",
    not_invited: "ID 공급자에는 로그인했지만 이 가상 클러스터의 멤버가 아닙니다. 가상 클러스터의 admin에게 초대를 \
                  요청하세요.",
    cf_no_permission: "Cloud Foundry에서 이 서비스 인스턴스에 접근할 권한이 없습니다. 해당 스페이스의 관리자에게 \
                       권한을 요청하세요.",
    login_failed: "로그인을 마치지 못했습니다: 만료되었거나 이미 사용되었거나 변조되었습니다. 로그인 페이지에서 \
                   다시 시작하세요.",
    provider_unavailable: "ID 공급자 또는 Cloud Foundry가 응답하지 않습니다. 잠시 후 다시 시도하세요.",
    changed_meanwhile: "다른 사람이 같은 순간에 이 멤버를 바꿨습니다: 목록을 확인하고 다시 시도하세요.",
    // The streaming session's page.
    session_page: "스트리밍 세션",
    resolution: "해상도",
    session_state_hint: "플랫폼이 이 인스턴스에 대해 보여 주는 것과 같은 문구입니다.",
    session_install_log: "설치 진행 상황(SteamCMD)",
    session_no_install: "세션 이미지에 애플리케이션이 들어 있어 설치할 것이 없습니다.",
    session_password: "VNC 비밀번호",
    session_reveal: "비밀번호 보기",
    session_open: "열기",
    session_open_hint: "새 탭에서 noVNC를 열고 로그인합니다: 비밀번호는 주소의 # 뒤 부분에 담기며, 브라우저는 이 \
                        부분을 어떤 서버에도 보내지 않습니다.",
    session_no_ingress: "이 세션에는 Ingress가 없어 대시보드가 브라우저까지 연결해 줍니다.",
    session_link: "세션 페이지 열기",
    session_proxy_refused: "Kubernetes가 이 세션의 Service에 접근(services/proxy)하는 것을 허용하지 않습니다.",
    session_not_running: "세션이 응답하지 않습니다: 중지되었거나 아직 시작 중입니다.",
    session_novnc_unknown: "이 세션은 대시보드가 모르는 noVNC를 제공합니다(여기서는 noVNC 1.3.0만 전달합니다). 인그레스로 여세요.",
    session_selkies_unknown: "이 세션은 대시보드가 모르는 Selkies 클라이언트를 제공합니다(여기서는 Selkies 2.1.0만 전달합니다). 인그레스로 여세요.",
    session_idle_stopped: ("시청자 없이", "분이 지나 중지되었습니다."),
    session_wake_hint: "열기를 누르면 다시 시작합니다(볼륨은 그대로입니다). 첫 화면이 도착하면 스트림이 보입니다.",
    stream: "세션 스트림",
    stream_waiting: "첫 화면을 기다리는 중…",
    stream_fullscreen: "전체 화면",
    stream_sound: ("소리 끄기", "소리 켜기"),
    stream_gamepad: "게임패드 감지됨",
    stream_stats: ("지연", "프레임/초", "Mbit/s"),
    too_many_streams: "실시간 페이지, 따라가는 로그, 세션 창이 동시에 너무 많이 열려 있습니다. 다른 탭에 열린 것까지 일부를 닫은 뒤 이 페이지를 새로 고치세요.",
    // --- Deploy form and endpoint tester (deploy) ---
    deploy: "컨테이너 배포",
    deploy_help: "무엇이든 만들기 전에 클러스터가 당신의 권한으로 모든 필드를 시험 실행(dry run)으로 확인합니다(권한, 쿼터, 한도, Pod Security). 같은 이름으로 다시 배포하면 앱이 갱신됩니다.",
    app_name: "이름",
    image: "이미지",
    container_port: "컨테이너 포트",
    env_lines: "환경 변수 (한 줄에 하나, NAME=value)",
    cpu_request: "CPU 요청",
    cpu_limit: "CPU 한도",
    memory_request: "메모리 요청",
    memory_limit: "메모리 한도",
    limits_prefilled: "크기는 이 가상 클러스터의 기본값(LimitRange)에서 시작합니다.",
    ingress_host: "Ingress 호스트 (선택)",
    autoscale_on: "CPU 사용량으로 오토스케일",
    cpu_percent: "CPU 목표 (%)",
    dry_run: "확인 (시험 실행)",
    deploy_now: "배포",
    dry_run_ok: "클러스터가 이것을 받아들입니다. 정확히 다음이 적용됩니다:",
    dry_run_refused: "클러스터가 이것을 거부합니다. 아무것도 바뀌지 않았습니다:",
    form_invalid: "올바르지 않은 필드가 있습니다. 아무것도 바뀌지 않았습니다.",
    whole_app: "앱 전체",
    deploy_progress: "진행 상황",
    no_such_app: "그런 앱이 없습니다(삭제되었거나 이 아이디로 볼 수 없습니다).",
    try_endpoint: "엔드포인트 시험",
    try_help: "대시보드가 당신의 권한으로 Kubernetes API의 서비스 프록시를 거쳐 이 네임스페이스의 Service나 Ingress에만 요청을 보냅니다. 다른 네임스페이스, API 서버, 호스트, 인터넷에는 보내지 않습니다.",
    target: "대상",
    service_port: "Service 포트",
    request_path: "경로",
    method: "메서드",
    request_headers: "헤더 (한 줄에 하나, Name: value)",
    request_body: "본문",
    send: "보내기",
    answer_status: "상태",
    latency: "지연 시간",
    answer_headers: "헤더",
    answer_truncated: "응답이 256 KiB보다 길어 나머지를 버렸습니다.",
    no_targets: "아직 시험할 Service나 Ingress가 없습니다.",
    try_refused: "보내지 않음:",
    try_no_endpoint: "응답할 수 있는 것이 없음:",
    try_denied: "Kubernetes가 이 아이디를 거부함:",
    try_failed: "응답 없음:",
    deploy_view_only: "현재 역할로는 여기에 배포할 수 없습니다(Kubernetes가 시험 실행도 거부합니다).",
    cores: "코어",
    in_use_now: "현재 사용 중",
    reserved: "예약",
    usage_request: "요청",
    usage_limit: "한도",
    no_request: "요청 없음",
    no_limit: "한도 없음",
    workload: "워크로드",
    last_hour: "최근 1시간",
    history_collecting: "사용 기록을 수집하는 중입니다.",
    spark_now: "현재",
    spark_max: "최고",
    spark_min: "최저",
    spark_samples: "표본 수",
    in_use_unavailable: "측정 불가(메트릭 API 없음)",
    month_usage: "이번 달 사용량",
    month_usage_help: "이번 달 1일(UTC)부터 브로커가 집계한 값입니다. 사용량은 메트릭 API가 측정한 값이고, 예약은 파드가 요청한 양입니다.",
    month_unavailable: "이번 달 사용량을 지금 읽을 수 없습니다.",
    core_hours: "코어·시간",
    gib_hours: "GiB·시간",
    gpu_hours: "GPU·시간",
    hours_unit: "시간",
    storage: "스토리지",
    streaming_sessions: "스트리밍 세션",
    autoscalers: "오토스케일러",
    autoscaler_app: "앱",
    autoscaler_cpu: "현재 CPU / 목표",
    autoscaler_pods: "현재 파드 → 목표 파드",
    autoscaler_range: "최소–최대",
    autoscaler_unmeasured: "측정 전",
    autoscaler_inactive: "스케일 불가",
    no_autoscalers: "오토스케일러가 없습니다.",
    autoscalers_unreadable: "현재 아이디로는 여기의 오토스케일러를 볼 수 없습니다.",
    // The YAML editor.
    edit: "편집",
    edit_help: "YAML을 고친 뒤 검토하세요. 클러스터가 내 권한으로 변경을 적용하지 않고 확인(시험 실행)해, 바뀔 필드를 하나씩 보여 주거나 거부하는 이유를 알려 줍니다. 적용하면 내 이름으로 저장됩니다(서버 측 적용, 필드 관리자 caas-dashboard). 다른 도구가 관리하는 필드는 충돌로 보여 줄 뿐, 가져오지 않습니다.",
    edit_yaml_label: "오브젝트의 YAML",
    edit_review: "변경 사항 검토",
    edit_apply: "적용",
    edit_cancel: "취소",
    edit_changes: "바뀔 내용",
    edit_no_changes: "바뀌는 것이 없습니다.",
    edit_added: "추가",
    edit_removed: "삭제",
    edit_invalid: "이 YAML은 쓸 수 없습니다. 아무것도 바뀌지 않았습니다:",
    edit_refused: "클러스터가 이 변경을 거부합니다. 아무것도 바뀌지 않았습니다:",
    edit_conflict: "고친 필드 가운데 다른 도구가 관리하는 것이 있습니다. 강제로 바꾸지 않았고 아무것도 바뀌지 않았습니다. 이 필드는 그대로 두거나, 관리하는 도구로 바꾸세요:",
    edit_conflict_field: "필드",
    edit_conflict_manager: "관리 주체",
    edit_stale: "편집기를 연 뒤에 오브젝트가 바뀌었습니다. 아무것도 바뀌지 않았습니다. 편집기를 다시 열어 현재 버전에서 시작하세요.",
    edit_not_allowed: "현재 아이디로는 이 오브젝트를 바꿀 수 없습니다.",
    edit_too_large: "YAML이 256 KiB보다 깁니다. 아무것도 바뀌지 않았습니다.",
    edit_applied: "변경 사항을 적용했습니다.",
    // The terminal into a container.
    terminal: "터미널",
    terminal_shell: "셸",
    terminal_open: "열기",
    terminal_limits: "입력 없이 {idle}분이 지나면 닫히고, 길어도 {longest}분 뒤에는 닫힙니다. 세션 기록에는 터미널에 표시된 내용 중 마지막 1 MiB가 남습니다.",
    terminal_screen: "터미널 화면",
    terminal_connecting: "연결 중…",
    terminal_connected: "연결되었습니다.",
    terminal_closed: "터미널이 닫혔습니다.",
    terminal_closed_idle: "닫힘: 입력이 없는 시간이 너무 길었습니다.",
    terminal_closed_longest: "닫힘: 허용된 최대 사용 시간에 도달했습니다.",
    terminal_closed_revoked: "닫힘: 로그인이 끝났거나 현재 아이디로 더 이상 여기서 터미널을 열 수 없습니다.",
    terminal_closed_exited: "닫힘: 셸이 끝났습니다.",
    terminal_closed_failed: "닫힘: 이 컨테이너에서 셸을 시작할 수 없습니다(이미지에 그 셸이 있나요?).",
    terminal_download: "세션 기록 내려받기",
    terminal_not_allowed: "현재 아이디로는 여기서 터미널을 열 수 없습니다.",
    terminal_no_container: "이 파드에서 실행 중인 컨테이너가 없습니다.",
    terminal_debug: "디버그",
    terminal_debug_target: "디버그 대상",
    terminal_debug_hint: "셸이 없는 이미지용: 선택한 컨테이너 옆에 셸이 있는 컨테이너를 추가하며, 그 컨테이너의 프로세스를 볼 수 있습니다. 추가된 컨테이너는 파드가 교체될 때까지 파드에 남습니다(시간이 다 되면 멈춤).",
    terminal_debug_late: "디버그 컨테이너가 제시간에 시작되지 않았습니다. 파드의 이벤트를 확인한 뒤 다시 시도하세요.",
    terminal_debug_not_allowed: "현재 아이디로는 여기에 디버그 컨테이너를 추가할 수 없습니다.",
    // The events timeline, search and the map.
    events: "이벤트",
    events_help: "쿠버네티스가 객체에 대해 알린 내용입니다. 최신순으로, 객체별로 묶어 보여 주며 경고는 ⚠로 표시합니다.",
    events_kind: "객체 종류",
    events_type: "유형",
    events_any: "전체",
    events_normal: "정상",
    events_warning: "경고",
    events_show: "보기",
    events_none: "이벤트가 없습니다.",
    events_cut: "최신 이벤트만 표시합니다:",
    events_times: "회",
    events_ago: "전",
    events_elsewhere: "이벤트는 별도 페이지에서 최신순, 객체별로 볼 수 있습니다:",
    search: "검색",
    search_label: "이름 또는 레이블(키=값)",
    search_help: "이름에 입력한 글자가 들어간 객체나 레이블이 붙은 객체를 찾습니다: app=web 또는 키만(app). 컨피그맵과 시크릿은 이름으로만 찾으며 내용은 보여 주지 않습니다.",
    search_none: "찾은 객체가 없습니다.",
    search_cut: "표시한 것보다 더 많이 찾았습니다. 검색어를 좁혀 주세요.",
    search_too_long: "검색어가 너무 깁니다.",
    search_kind: "종류",
    search_labels: "레이블",
    map: "관계도",
    map_help: "객체가 어떻게 이어지는지 보여 줍니다: 외부 진입점(인그레스)에서 서비스로, 요청을 받는 파드와 그 파드를 만든 객체로, 볼륨 클레임에서 볼륨으로, 오토스케일러에서 그 대상으로.",
    map_list: "관계도를 목록으로",
    map_objects: "개 객체",
    map_links: "개 연결",
    map_empty: "아직 표시할 객체가 없습니다.",
    map_cut: "객체가 너무 많아 앞의 일부만 표시합니다.",
    map_left_out: "이 아이디로 볼 수 없어 관계도에서 뺀 종류:",
    map_routes_to: "요청 전달 →",
    map_selects: "요청 전달 →",
    map_owns: "소유 →",
    map_mounts: "마운트 →",
    map_bound_to: "연결 →",
    map_scales: "스케일 →",
};

/// The language the browser prefers among those the dashboard speaks (English when it names neither).
pub fn negotiate(accept_language: Option<&str>) -> &'static Translation {
    let mut best: Option<(f32, &'static Translation)> = None;
    for entry in accept_language.unwrap_or_default().split(',') {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .find_map(|part| part.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let text = match tag.split('-').next() {
            Some("ko") => &KO,
            Some("en") => &EN,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, text));
        }
    }
    best.map_or(&EN, |(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_known_language_wins() {
        assert_eq!(negotiate(Some("ko-KR,ko;q=0.9,en-US;q=0.8")).lang, "ko");
        assert_eq!(negotiate(Some("fr-FR, en;q=0.5, ko;q=0.4")).lang, "en");
        assert_eq!(negotiate(Some("en;q=0.2, ko;q=0.7")).lang, "ko");
        assert_eq!(negotiate(Some("fr")).lang, "en");
        assert_eq!(negotiate(Some("ko;q=0")).lang, "en", "q=0 means not acceptable");
        assert_eq!(negotiate(None).lang, "en");
    }

    #[test]
    fn every_quota_resource_of_the_catalog_has_words_in_every_language() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/catalog.yaml"))
            .expect("read catalog/catalog.yaml");
        let catalog = crate::catalog::Catalog::from_yaml(&text).expect("the catalog parses");
        let plans = catalog.services.iter().flat_map(|service| service.plans.iter());
        let resources: std::collections::BTreeSet<&str> =
            plans.flat_map(|plan| plan.broker.quota.keys().map(String::as_str)).collect();
        assert!(resources.contains("requests.cpu"), "{resources:?}");
        for text in [&EN, &KO] {
            for resource in &resources {
                assert_ne!(text.quota_name(resource), *resource, "{resource} has no words in {}", text.lang);
            }
        }
        assert_eq!(EN.quota_name("count/widgets.example.com"), "count/widgets.example.com", "unknown: raw name");
        assert_eq!((EN.quota_name("requests.cpu"), KO.quota_name("requests.cpu")), ("CPU reserved", "예약된 CPU"));
    }

    #[test]
    fn every_alert_kind_has_advice_in_every_language() {
        for text in [&EN, &KO] {
            for (kind, _) in EN.advice {
                assert!(!text.advice(kind).is_empty(), "{kind:?} in {}", text.lang);
            }
        }
    }

    #[test]
    fn the_signed_in_identity_is_named_as_its_users_know_it() {
        let binding = Signer::Binding("ceo-admin".to_owned());
        assert_eq!(EN.signer(&binding, Some("admin")), "binding ceo-admin (admin)");
        assert_eq!(EN.signer(&Signer::Member("kim@example".to_owned()), Some("edit")), "member kim@example (edit)");
        assert_eq!(EN.signer(&Signer::Owner, Some("admin")), "owner");
        assert_eq!(KO.signer(&binding, Some("admin")), "바인딩 ceo-admin (admin)");
        assert_eq!(EN.signer(&binding, None), "binding ceo-admin", "no role bound: none said");
    }

    #[test]
    fn kinds_have_words_in_every_language_by_resource_and_by_kind() {
        for kind in crate::tenant::objects::Kind::ALL {
            for text in [&EN, &KO] {
                assert_ne!(text.kind_many(kind.as_str()), kind.as_str(), "{kind:?} in {}", text.lang);
            }
        }
        assert_eq!(EN.kind_one("PersistentVolumeClaim"), "Volume claim");
        assert_eq!(EN.kind_many("persistentvolumeclaims"), "Volume claims");
        assert_eq!(KO.kind_one("Deployment"), "디플로이먼트");
        assert_eq!(EN.kind_one("Lease"), "Lease", "an unknown kind as it is");
    }
}
