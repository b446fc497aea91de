//! The objects of the workload plans, deployed into a tenant's namespace and labelled with the workload's instance so
//! that deprovisioning removes exactly them: a streaming session (StatefulSet with a volume, a SteamCMD init step, the
//! session container, a Service, an optional Ingress) and a container app (Deployment, Service, optional Ingress and
//! HorizontalPodAutoscaler).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, TCPSocketAction, Toleration, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use super::names::{LABEL_APP, LABEL_INSTANCE};
use crate::catalog::WorkloadSize;

/// Pod-template annotation whose change rolls the pods (the `restart` parameter).
pub const ANNOTATION_RESTART: &str = "caas-broker.io/restart";
/// The stream port of a session (Selkies' page and WebSocket, or noVNC and websockify), the one port it exposes.
pub const STREAM_PORT: i32 = 6080;
/// The name of that port, on the container and on the Service.
pub const STREAM_PORT_NAME: &str = "stream";
/// The VNC port x11vnc listens on in a session pod, on its loopback only: a native VNC client reaches it through
/// `kubectl port-forward`, which enters the pod's network namespace, and nothing else reaches it.
pub const VNC_PORT: i32 = 5900;
/// Where the session container writes its readiness files.
pub const SESSION_STATE_DIR: &str = "/tmp/session";
/// Where the session container lists the gamepads its joystick interposer serves (empty files `js0`…, `event1000`…),
/// for games that find joysticks by listing the directory: an empty volume, as `/dev` is not the container's to write.
pub const GAMEPAD_DEVICE_DIR: &str = "/dev/input";
/// Key of the VNC password in the session's Secret.
pub const VNC_PASSWORD_KEY: &str = "password";

/// Where workload pods run and how their images are pulled: the operator's choice for every workload plan (a node
/// pool set aside for tenants' workloads, images pre-loaded on the nodes), from the `workloads` settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodPlacement {
    /// Labels a node must have to run a workload pod; any node when empty.
    pub node_selector: BTreeMap<String, String>,
    /// Taints of that node pool the pods tolerate.
    pub tolerations: Vec<Toleration>,
    /// `Always`, `IfNotPresent` or `Never`; Kubernetes' default for the image's tag when absent.
    pub image_pull_policy: Option<String>,
}

impl PodPlacement {
    /// Puts the placement and the pull policy into a pod's spec.
    fn apply(&self, mut pod: PodSpec) -> PodSpec {
        if !self.node_selector.is_empty() {
            pod.node_selector = Some(self.node_selector.clone());
        }
        if !self.tolerations.is_empty() {
            pod.tolerations = Some(self.tolerations.clone());
        }
        let containers = pod.init_containers.iter_mut().flatten().chain(pod.containers.iter_mut());
        for container in containers {
            container.image_pull_policy.clone_from(&self.image_pull_policy);
        }
        pod
    }
}

/// A container's CPU and memory requests and limits given one by one (quantities as Kubernetes spells them), where a
/// plan's [`WorkloadSize`] gives one value for both: a tenant deploying from the dashboard sizes their own app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// CPU the scheduler sets aside.
    pub cpu_request: String,
    /// Most CPU the container may use.
    pub cpu_limit: String,
    /// Memory the scheduler sets aside.
    pub memory_request: String,
    /// Most memory the container may use before it is killed.
    pub memory_limit: String,
}

/// What every workload object shares.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Base name of the objects.
    pub name: String,
    /// The tenant namespace.
    pub namespace: String,
    /// Labels of every object (managed-by, instance, service, plan).
    pub labels: BTreeMap<String, String>,
    /// Pod size: each container's request and limit alike.
    pub size: WorkloadSize,
    /// Requests and limits given apart, instead of the size's (an app deployed from the dashboard).
    pub resources: Option<Resources>,
    /// Running (or scaled to zero).
    pub running: bool,
    /// The restart token, if any.
    pub restart: Option<String>,
    /// Host of an Ingress, if one is wanted.
    pub ingress_host: Option<String>,
    /// IngressClass of that Ingress.
    pub ingress_class: Option<String>,
    /// The nodes the pods run on and the image pull policy.
    pub placement: PodPlacement,
}

impl Workload {
    /// A running workload in `namespace` placed as `placement`, with no name, labels, size or Ingress yet: what an
    /// app deployed from the dashboard starts from before its form fills it in.
    pub fn unnamed(namespace: &str, placement: PodPlacement) -> Workload {
        Workload {
            name: String::new(),
            namespace: namespace.to_owned(),
            labels: BTreeMap::new(),
            size: WorkloadSize::default(),
            resources: None,
            running: true,
            restart: None,
            ingress_host: None,
            ingress_class: None,
            placement,
        }
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels.clone()),
            ..ObjectMeta::default()
        }
    }

    /// The pods' selector: the instance label of a plan's workload, the app label of an app deployed from the
    /// dashboard (selectors cannot change once made, so each keeps the one it was made with).
    fn selector(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .filter(|(key, _)| [LABEL_INSTANCE, LABEL_APP].contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn template_meta(&self) -> ObjectMeta {
        ObjectMeta {
            labels: Some(self.labels.clone()),
            annotations: self
                .restart
                .as_ref()
                .map(|token| BTreeMap::from([(ANNOTATION_RESTART.to_owned(), token.clone())])),
            ..ObjectMeta::default()
        }
    }

    fn resources(&self, gpu: bool) -> ResourceRequirements {
        if let Some(given) = &self.resources {
            let pair = |cpu: &str, memory: &str| {
                BTreeMap::from([
                    ("cpu".to_owned(), Quantity(cpu.to_owned())),
                    ("memory".to_owned(), Quantity(memory.to_owned())),
                ])
            };
            return ResourceRequirements {
                requests: Some(pair(&given.cpu_request, &given.memory_request)),
                limits: Some(pair(&given.cpu_limit, &given.memory_limit)),
                ..ResourceRequirements::default()
            };
        }
        let mut values = BTreeMap::from([
            ("cpu".to_owned(), Quantity(self.size.cpu.clone())),
            ("memory".to_owned(), Quantity(self.size.memory.clone())),
        ]);
        if gpu && self.size.gpu > 0 {
            values.insert("nvidia.com/gpu".to_owned(), Quantity(self.size.gpu.to_string()));
        }
        ResourceRequirements { requests: Some(values.clone()), limits: Some(values), ..ResourceRequirements::default() }
    }

    /// The Service in front of the pods: its port `name` (`port`) leads to the pods' port named `target`.
    pub fn service(&self, name: &str, port: i32, target: &str, service_type: &str) -> Service {
        Service {
            metadata: self.meta(&self.name),
            spec: Some(ServiceSpec {
                type_: Some(service_type.to_owned()),
                selector: Some(self.selector()),
                ports: Some(vec![ServicePort {
                    name: Some(name.to_owned()),
                    port,
                    target_port: Some(IntOrString::String(target.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The Ingress, when a host was asked for.
    pub fn ingress(&self, path: &str, service_port: i32) -> Option<Ingress> {
        let host = self.ingress_host.clone()?;
        Some(Ingress {
            metadata: self.meta(&self.name),
            spec: Some(IngressSpec {
                ingress_class_name: self.ingress_class.clone(),
                rules: Some(vec![IngressRule {
                    host: Some(host),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some(path.to_owned()),
                            path_type: "Prefix".to_owned(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: self.name.clone(),
                                    port: Some(ServiceBackendPort { number: Some(service_port), ..Default::default() }),
                                }),
                                ..IngressBackend::default()
                            },
                        }],
                    }),
                }]),
                ..IngressSpec::default()
            }),
            ..Ingress::default()
        })
    }
}

fn hardened() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
        ..SecurityContext::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.to_owned()), ..EnvVar::default() }
}

/// A probe that passes once `file` exists in the container: the session's entrypoint writes its readiness files
/// when what they name can be seen, which no TCP probe of a port can tell.
fn file_probe(file: &str, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(vec!["test".to_owned(), "-e".to_owned(), file.to_owned()]) }),
        period_seconds: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// Seconds the session's display may take to come up (Xvfb, the window manager) before the kubelet restarts the
/// container: generous, for a node that starts several sessions at once on few cores.
const DISPLAY_START_SECONDS: i32 = 180;

fn tcp_probe(port: &str) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::String(port.to_owned()), ..TCPSocketAction::default() }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}

/// How a session streams its display on the stream port: what a browser (or another client) speaks to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamProtocol {
    /// Selkies: H.264 video and Opus audio over one WebSocket, keyboard, mouse, gamepads and clipboard.
    #[default]
    Selkies,
    /// noVNC over websockify: the VNC protocol in the browser, for clients that want it.
    Novnc,
}

impl StreamProtocol {
    /// The value of the session container's `STREAM_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamProtocol::Selkies => "selkies",
            StreamProtocol::Novnc => "novnc",
        }
    }
}

/// A streaming session: one pod with a SteamCMD init step and the session container.
#[derive(Debug, Clone)]
pub struct StreamingSession {
    /// The shared parts.
    pub workload: Workload,
    /// The session image (`images/streaming-session`).
    pub image: String,
    /// Steam application the SteamCMD init step installs; none runs an application the image already holds.
    pub steam_app_id: Option<u64>,
    /// Secret in the tenant namespace with `username` and `password`; anonymous login when absent.
    pub steam_credentials_secret: Option<String>,
    /// Command line of the application (shell words).
    pub launch: Vec<String>,
    /// Virtual display size, `WIDTHxHEIGHT`.
    pub resolution: String,
    /// Service type.
    pub expose: String,
    /// RuntimeClass of GPU sessions.
    pub runtime_class: Option<String>,
    /// What the stream port speaks.
    pub protocol: StreamProtocol,
    /// Minutes without a viewer after which the session stops itself (and the broker scales it to zero); 0 = never.
    pub idle_stop_minutes: u32,
    /// The dashboard's origin, when the dashboard frames the session's page from another origin (its Ingress): Selkies
    /// lets no other page frame it.
    pub framed_by: Option<String>,
}

impl StreamingSession {
    /// Name of the Secret with the VNC password.
    pub fn vnc_secret_name(&self) -> String {
        format!("{}-vnc", self.workload.name)
    }

    /// The Secret holding the generated VNC password (made once; never changed by later applies).
    pub fn vnc_secret(&self, password: &str) -> Secret {
        Secret {
            metadata: self.workload.meta(&self.vnc_secret_name()),
            string_data: Some(BTreeMap::from([(VNC_PASSWORD_KEY.to_owned(), password.to_owned())])),
            ..Secret::default()
        }
    }

    /// The session's StatefulSet: its volume keeps the install and the Steam configuration across restarts.
    pub fn stateful_set(&self) -> StatefulSet {
        let w = &self.workload;
        let gpu = w.size.gpu > 0;
        let mut steam_env = vec![
            env("STEAM_APP_ID", &self.steam_app_id.unwrap_or_default().to_string()),
            env("INSTALL_DIR", "/data/app"),
            env("HOME", "/data/home"),
        ];
        if let Some(secret) = &self.steam_credentials_secret {
            for (variable, key) in [("STEAM_USERNAME", "username"), ("STEAM_PASSWORD", "password")] {
                steam_env.push(EnvVar {
                    name: variable.to_owned(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret.clone(),
                            key: key.to_owned(),
                            optional: Some(false),
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                });
            }
        }
        let mut session_env = vec![
            env("DISPLAY_NUMBER", "1"),
            env("RESOLUTION", &format!("{}x24", self.resolution)),
            env("VNC_PASSWORD_FILE", "/etc/vnc/password"),
            env("STREAM_PORT", &STREAM_PORT.to_string()),
            env("STREAM_PROTOCOL", self.protocol.as_str()),
            env("VNC_PORT", &VNC_PORT.to_string()),
            // NVENC where the plan gives a GPU; the CPU's x264 everywhere else.
            env("VIDEO_ENCODER", if gpu { "nvenc" } else { "software" }),
            env("IDLE_STOP_MINUTES", &self.idle_stop_minutes.to_string()),
            env("APP_COMMAND", &shell_words(&self.launch)),
            env("HOME", "/data/home"),
            env("STATE_DIR", SESSION_STATE_DIR),
            env("GAMEPAD_DEVICES", GAMEPAD_DEVICE_DIR),
        ];
        if let Some(origin) = &self.framed_by {
            session_env.push(env("STREAM_FRAME_ANCESTORS", origin));
        }
        // No NVIDIA_VISIBLE_DEVICES or NVIDIA_DRIVER_CAPABILITIES here: the device plugin's assignment decides which
        // GPUs the session gets (=all would expose every GPU of the node), the image asks for the driver's graphics
        // and video capabilities, and the tenant guard refuses both variables in tenant pods, the broker's included.
        let data = VolumeMount { name: "data".to_owned(), mount_path: "/data".to_owned(), ..VolumeMount::default() };
        let init = self.steam_app_id.map(|_| Container {
            name: "steamcmd".to_owned(),
            image: Some(self.image.clone()),
            command: Some(vec!["/usr/local/bin/steamcmd-install.sh".to_owned()]),
            env: Some(steam_env),
            volume_mounts: Some(vec![data.clone()]),
            resources: Some(w.resources(false)),
            security_context: Some(hardened()),
            ..Container::default()
        });
        let session = Container {
            name: "session".to_owned(),
            image: Some(self.image.clone()),
            command: Some(vec!["/usr/local/bin/entrypoint.sh".to_owned()]),
            // An installed app starts in its install directory; one the image holds, in the image's WORKDIR.
            working_dir: self.steam_app_id.map(|_| "/data/app".to_owned()),
            env: Some(session_env),
            ports: Some(vec![ContainerPort {
                name: Some(STREAM_PORT_NAME.to_owned()),
                container_port: STREAM_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            }]),
            // Started once the display runs; ready once the application's window is on it and the stream answers, so
            // that `succeeded` means a viewer sees the application.
            startup_probe: Some(file_probe(&format!("{SESSION_STATE_DIR}/display.ready"), DISPLAY_START_SECONDS)),
            readiness_probe: Some(file_probe(&format!("{SESSION_STATE_DIR}/session.ready"), 3)),
            volume_mounts: Some(vec![
                data,
                VolumeMount { name: "shm".to_owned(), mount_path: "/dev/shm".to_owned(), ..VolumeMount::default() },
                VolumeMount {
                    name: "input".to_owned(),
                    mount_path: GAMEPAD_DEVICE_DIR.to_owned(),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "vnc".to_owned(),
                    mount_path: "/etc/vnc".to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            ]),
            resources: Some(w.resources(true)),
            security_context: Some(hardened()),
            ..Container::default()
        };
        let pod = PodSpec {
            init_containers: init.map(|init| vec![init]),
            containers: vec![session],
            automount_service_account_token: Some(false),
            runtime_class_name: if gpu { self.runtime_class.clone() } else { None },
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                fs_group: Some(1000),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![
                Volume {
                    name: "shm".to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: Some("Memory".to_owned()),
                        size_limit: Some(Quantity("1Gi".to_owned())),
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "input".to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: Some("Memory".to_owned()),
                        size_limit: Some(Quantity("1Mi".to_owned())),
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "vnc".to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(self.vnc_secret_name()),
                        default_mode: Some(0o400),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                },
            ]),
            ..PodSpec::default()
        };
        let storage = w.size.storage.clone().unwrap_or_else(|| "10Gi".to_owned());
        StatefulSet {
            metadata: w.meta(&w.name),
            spec: Some(StatefulSetSpec {
                replicas: Some(i32::from(w.running)),
                service_name: Some(w.name.clone()),
                selector: LabelSelector { match_labels: Some(w.selector()), ..LabelSelector::default() },
                template: PodTemplateSpec { metadata: Some(w.template_meta()), spec: Some(w.placement.apply(pod)) },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".to_owned()),
                        labels: Some(w.labels.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(storage))])),
                            ..VolumeResourceRequirements::default()
                        }),
                        ..PersistentVolumeClaimSpec::default()
                    }),
                    ..PersistentVolumeClaim::default()
                }]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }
    }

    /// The Service of the stream port.
    pub fn service(&self) -> Service {
        self.workload.service(STREAM_PORT_NAME, STREAM_PORT, STREAM_PORT_NAME, &self.expose)
    }

    /// The Ingress of the stream page (page and WebSocket share the port, so an HTTP Ingress carries both).
    pub fn ingress(&self) -> Option<Ingress> {
        self.workload.ingress("/", STREAM_PORT)
    }
}

/// Joins words into one shell command line, quoting each word.
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@".contains(&b)) {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Autoscaling bounds of a container app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscale {
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// Target average CPU use, percent of the request.
    pub cpu_percent: i32,
}

/// A container image run as a web app.
#[derive(Debug, Clone)]
pub struct ContainerApp {
    /// The shared parts.
    pub workload: Workload,
    /// The image.
    pub image: String,
    /// The container's port.
    pub port: i32,
    /// Pods, when not autoscaled.
    pub replicas: i32,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Autoscaling, if wanted.
    pub autoscale: Option<Autoscale>,
    /// How long the autoscaler waits, with CPU use below its target, before it removes pods (its scale-down
    /// stabilization window); Kubernetes' default (300 s) when `None`.
    pub scale_down_after_seconds: Option<i32>,
    /// Path of the Ingress rule.
    pub path: String,
}

impl ContainerApp {
    /// The app's Deployment.
    pub fn deployment(&self) -> Deployment {
        let w = &self.workload;
        let replicas = match (&self.autoscale, w.running) {
            (_, false) => Some(0),
            (Some(autoscale), true) => Some(autoscale.min),
            (None, true) => Some(self.replicas),
        };
        let container = Container {
            name: "app".to_owned(),
            image: Some(self.image.clone()),
            env: Some(self.env.iter().map(|(name, value)| env(name, value)).collect()),
            ports: Some(vec![ContainerPort {
                name: Some("app".to_owned()),
                container_port: self.port,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(tcp_probe("app")),
            resources: Some(w.resources(false)),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                ..SecurityContext::default()
            }),
            ..Container::default()
        };
        Deployment {
            metadata: w.meta(&w.name),
            spec: Some(DeploymentSpec {
                replicas,
                selector: LabelSelector { match_labels: Some(w.selector()), ..LabelSelector::default() },
                template: PodTemplateSpec {
                    metadata: Some(w.template_meta()),
                    spec: Some(w.placement.apply(PodSpec {
                        containers: vec![container],
                        automount_service_account_token: Some(false),
                        ..PodSpec::default()
                    })),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    /// The Service (port 80 to the app's port).
    pub fn service(&self) -> Service {
        self.workload.service("http", 80, "app", "ClusterIP")
    }

    /// The Ingress, when a host was asked for.
    pub fn ingress(&self) -> Option<Ingress> {
        self.workload.ingress(&self.path, 80)
    }

    /// The autoscaler, when autoscaling was asked for and the app runs.
    pub fn autoscaler(&self) -> Option<HorizontalPodAutoscaler> {
        let autoscale = self.autoscale.as_ref().filter(|_| self.workload.running)?;
        Some(HorizontalPodAutoscaler {
            metadata: self.workload.meta(&self.workload.name),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_owned()),
                    kind: "Deployment".to_owned(),
                    name: self.workload.name.clone(),
                },
                min_replicas: Some(autoscale.min),
                max_replicas: autoscale.max,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".to_owned(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".to_owned(),
                        target: MetricTarget {
                            type_: "Utilization".to_owned(),
                            average_utilization: Some(autoscale.cpu_percent),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                behavior: self.scale_down_after_seconds.map(|seconds| HorizontalPodAutoscalerBehavior {
                    scale_down: Some(HPAScalingRules {
                        stabilization_window_seconds: Some(seconds),
                        ..HPAScalingRules::default()
                    }),
                    ..HorizontalPodAutoscalerBehavior::default()
                }),
            },
            ..HorizontalPodAutoscaler::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(steam_app_id: Option<u64>, placement: PodPlacement) -> StreamingSession {
        StreamingSession {
            workload: Workload {
                name: "session-x".to_owned(),
                labels: BTreeMap::from([(LABEL_INSTANCE.to_owned(), "x".to_owned())]),
                size: WorkloadSize { cpu: "1".to_owned(), memory: "2Gi".to_owned(), ..WorkloadSize::default() },
                ..Workload::unnamed("caas-x", placement)
            },
            image: "session:1".to_owned(),
            steam_app_id,
            steam_credentials_secret: None,
            launch: vec!["./start.sh".to_owned()],
            resolution: "1280x720".to_owned(),
            expose: "ClusterIP".to_owned(),
            runtime_class: None,
            protocol: StreamProtocol::default(),
            idle_stop_minutes: 30,
            framed_by: None,
        }
    }

    fn session_pod(session: &StreamingSession) -> PodSpec {
        session.stateful_set().spec.and_then(|s| s.template.spec).expect("pod")
    }

    fn session_env(pod: &PodSpec) -> BTreeMap<String, String> {
        let env = pod.containers[0].env.iter().flatten();
        env.filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect()
    }

    fn probe_command(probe: Option<&Probe>) -> Vec<String> {
        probe.and_then(|p| p.exec.as_ref()?.command.clone()).unwrap_or_default()
    }

    #[test]
    fn a_cpu_session_streams_with_selkies_in_software_on_its_named_stream_port() {
        let pod = session_pod(&session(None, PodPlacement::default()));
        let env = session_env(&pod);
        let get = |name: &str| env.get(name).map(String::as_str);
        assert_eq!(get("STREAM_PORT"), Some("6080"));
        assert_eq!(get("STREAM_PROTOCOL"), Some("selkies"));
        assert_eq!(get("VIDEO_ENCODER"), Some("software"));
        assert_eq!(get("IDLE_STOP_MINUTES"), Some("30"));
        assert_eq!(get("VNC_PORT"), Some("5900"));
        assert_eq!(get("STATE_DIR"), Some("/tmp/session"));
        assert_eq!(get("RESOLUTION"), Some("1280x720x24"));
        assert_eq!(get("NOVNC_PORT"), None, "renamed STREAM_PORT");
        let ports = pod.containers[0].ports.clone().unwrap_or_default();
        let ports: Vec<_> = ports.iter().map(|p| (p.name.as_deref(), p.container_port)).collect();
        assert_eq!(ports, [(Some("stream"), 6080)], "one port, and not the VNC port");
        let service = session(None, PodPlacement::default()).service();
        let port = service.spec.and_then(|s| s.ports).and_then(|mut p| p.pop()).expect("a port");
        assert_eq!(
            (port.name.as_deref(), port.port, port.target_port),
            (Some("stream"), 6080, Some(IntOrString::String("stream".to_owned())))
        );
        let mut novnc = session(None, PodPlacement::default());
        (novnc.protocol, novnc.idle_stop_minutes) = (StreamProtocol::Novnc, 0);
        let env = session_env(&session_pod(&novnc));
        assert_eq!(env.get("STREAM_PROTOCOL").map(String::as_str), Some("novnc"));
        assert_eq!(env.get("IDLE_STOP_MINUTES").map(String::as_str), Some("0"), "0: never");
        assert_eq!(env.get("STREAM_FRAME_ANCESTORS"), None, "framed by its own origin only");
        novnc.framed_by = Some("https://dashboard.example.com".to_owned());
        let env = session_env(&session_pod(&novnc));
        assert_eq!(env.get("STREAM_FRAME_ANCESTORS").map(String::as_str), Some("https://dashboard.example.com"));
    }

    #[test]
    fn a_session_lists_its_gamepads_in_an_empty_volume_at_dev_input() {
        let pod = session_pod(&session(None, PodPlacement::default()));
        assert_eq!(session_env(&pod).get("GAMEPAD_DEVICES").map(String::as_str), Some("/dev/input"));
        let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
        let mount = mounts.iter().find(|m| m.mount_path == "/dev/input").expect("a volume at /dev/input");
        assert_ne!(mount.read_only, Some(true), "the entrypoint writes the device names there");
        let volumes = pod.volumes.clone().unwrap_or_default();
        let volume = volumes.iter().find(|v| v.name == mount.name).expect("the mounted volume");
        let empty = volume.empty_dir.as_ref().expect("an emptyDir: no host path, no device, Pod Security restricted");
        assert_eq!(empty.size_limit, Some(Quantity("1Mi".to_owned())));
        assert!(volume.host_path.is_none());
        let context = pod.containers[0].security_context.clone().unwrap_or_default();
        assert_eq!(context.privileged, None);
        assert_eq!(context.allow_privilege_escalation, Some(false));
        assert_eq!(context.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_owned()]));
    }

    #[test]
    fn a_gpu_session_encodes_with_nvenc() {
        let mut gpu = session(None, PodPlacement::default());
        gpu.workload.size.gpu = 1;
        let env = session_env(&session_pod(&gpu));
        assert_eq!(env.get("VIDEO_ENCODER").map(String::as_str), Some("nvenc"));
    }

    #[test]
    fn a_session_is_started_with_its_display_and_ready_with_its_application_visible() {
        let pod = session_pod(&session(Some(1007), PodPlacement::default()));
        let container = &pod.containers[0];
        assert_eq!(probe_command(container.startup_probe.as_ref()), ["test", "-e", "/tmp/session/display.ready"]);
        assert_eq!(probe_command(container.readiness_probe.as_ref()), ["test", "-e", "/tmp/session/session.ready"]);
        let startup = container.startup_probe.as_ref().expect("a startup probe");
        assert_eq!(startup.period_seconds, Some(1));
        let allowed = startup.period_seconds.unwrap_or(10) * startup.failure_threshold.unwrap_or(3);
        assert!(allowed >= 120, "a slow display start is not a failure: {allowed} s");
        assert_eq!(container.readiness_probe.as_ref().and_then(|p| p.period_seconds), Some(1));
        assert!(container.readiness_probe.as_ref().is_some_and(|p| p.tcp_socket.is_none()));
        let init = pod.init_containers.iter().flatten().next().expect("the SteamCMD step");
        assert!(init.startup_probe.is_none() && init.readiness_probe.is_none(), "an init container takes no probes");
    }

    #[test]
    fn a_session_installs_with_steamcmd_only_when_it_has_a_steam_app() {
        let installed = session(Some(1007), PodPlacement::default()).stateful_set();
        let pod = installed.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.init_containers.map(|c| c.len()), Some(1));
        assert_eq!(pod.containers[0].working_dir.as_deref(), Some("/data/app"));
        let held = session(None, PodPlacement::default()).stateful_set();
        let pod = held.spec.and_then(|s| s.template.spec).expect("pod");
        assert!(pod.init_containers.is_none(), "no SteamCMD step for an app the image holds");
        assert_eq!(pod.containers[0].working_dir, None, "the image's WORKDIR");
    }

    #[test]
    fn placement_reaches_every_container_and_the_pod() {
        let placement = PodPlacement {
            node_selector: BTreeMap::from([("type".to_owned(), "real".to_owned())]),
            tolerations: vec![Toleration {
                key: Some("pool".to_owned()),
                operator: Some("Exists".to_owned()),
                ..Toleration::default()
            }],
            image_pull_policy: Some("Never".to_owned()),
        };
        let set = session(Some(1007), placement.clone()).stateful_set();
        let pod = set.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.node_selector.as_ref(), Some(&placement.node_selector));
        assert_eq!(pod.tolerations.as_ref(), Some(&placement.tolerations));
        let policies: Vec<_> = pod
            .init_containers
            .iter()
            .flatten()
            .chain(&pod.containers)
            .map(|c| c.image_pull_policy.as_deref())
            .collect();
        assert_eq!(policies, [Some("Never"), Some("Never")]);
        let default = session(Some(1007), PodPlacement::default()).stateful_set();
        let pod = default.spec.and_then(|s| s.template.spec).expect("pod");
        assert!(
            pod.node_selector.is_none() && pod.tolerations.is_none() && pod.containers[0].image_pull_policy.is_none()
        );
    }

    #[test]
    fn a_gpu_session_leaves_its_gpus_to_the_device_plugin() {
        let mut gpu = session(Some(1007), PodPlacement::default());
        gpu.workload.size.gpu = 1;
        let pod = gpu.stateful_set().spec.and_then(|s| s.template.spec).expect("pod");
        let limits = pod.containers[0].resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
        assert_eq!(limits.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"), "the GPU is asked of the plugin");
        let names: Vec<&str> = pod
            .init_containers
            .iter()
            .flatten()
            .chain(&pod.containers)
            .flat_map(|c| c.env.iter().flatten().map(|e| e.name.as_str()))
            .collect();
        assert!(
            !names.iter().any(|name| name.starts_with("NVIDIA_")),
            "the tenant guard refuses NVIDIA_* variables in tenant pods: {names:?}"
        );
    }

    #[test]
    fn an_autoscaler_keeps_kubernetes_scale_down_window_unless_one_is_asked_for() {
        let app = |scale_down_after_seconds| ContainerApp {
            workload: Workload { name: "web".to_owned(), ..Workload::unnamed("caas-x", PodPlacement::default()) },
            image: "web:1".to_owned(),
            port: 8080,
            replicas: 1,
            env: BTreeMap::new(),
            autoscale: Some(Autoscale { min: 1, max: 3, cpu_percent: 50 }),
            scale_down_after_seconds,
            path: "/".to_owned(),
        };
        let window = |app: ContainerApp| {
            let spec = app.autoscaler().expect("an autoscaler").spec;
            assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 3));
            spec.behavior.map(|b| b.scale_down.and_then(|rules| rules.stabilization_window_seconds))
        };
        assert_eq!(window(app(None)), None, "no behavior: Kubernetes' own default");
        assert_eq!(window(app(Some(30))), Some(Some(30)));
        assert_eq!(window(app(Some(0))), Some(Some(0)));
    }

    #[test]
    fn shell_words_quote_what_needs_it() {
        let words = ["./game.x86_64", "-windowed", "it's here", ""].map(str::to_owned);
        assert_eq!(shell_words(&words), r#"./game.x86_64 -windowed 'it'\''s here' ''"#);
    }
}
