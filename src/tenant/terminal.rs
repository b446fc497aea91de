//! A shell in a container of one of the tenant's pods, opened as the signed-in user with their own client: the
//! apiserver's `pods/exec` (WebSocket, `v5.channel.k8s.io`, negotiated by kube) with a terminal, so Kubernetes' RBAC
//! decides (`create pods/exec`: the `edit` and `admin` roles, not `view`). What the terminal's page carries over the
//! browser's WebSocket is the dashboard's; this module only opens the process and hands out its input, output and
//! resize channel. For images without a shell (distroless), a debug container: an ephemeral container with a shell,
//! beside the chosen container and seeing its processes, for a user Kubernetes lets `patch pods/ephemeralcontainers`
//! (which the built-in `edit` and `admin` roles do not grant: an operator's role must).

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, Patch, PatchParams, TerminalSize};
use kube::{Api, Client};
use serde_json::json;
use tokio::io::{ReadHalf, SimplexStream, WriteHalf};

use crate::k8s::access::{self, Permission};

/// What a terminal needs: `create` on `pods/exec` ([`EXEC_SUBRESOURCE`]).
pub const EXEC: Permission<'static> = Permission { verb: "create", group: "", resource: "pods" };
/// The subresource of [`EXEC`].
pub const EXEC_SUBRESOURCE: &str = "exec";

/// What a debug container needs: `patch` on `pods/ephemeralcontainers` ([`DEBUG_SUBRESOURCE`]).
pub const DEBUG: Permission<'static> = Permission { verb: "patch", group: "", resource: "pods" };
/// The subresource of [`DEBUG`].
pub const DEBUG_SUBRESOURCE: &str = "ephemeralcontainers";
/// The prefix of a debug container's name.
pub const DEBUG_PREFIX: &str = "debug-";

/// The most bytes of input or output buffered between the browser and the apiserver, each way.
const BUFFER_BYTES: usize = 64 * 1024;

/// Whether the identity of `client` may open a terminal in `namespace`; the dashboard shows the control only then.
pub async fn may_open(client: &Client, namespace: &str) -> Result<bool, kube::Error> {
    access::allowed_on(client, namespace, EXEC, Some(EXEC_SUBRESOURCE)).await
}

/// Whether the identity of `client` may add debug containers in `namespace`; the dashboard shows the control only then.
pub async fn may_debug(client: &Client, namespace: &str) -> Result<bool, kube::Error> {
    access::allowed_on(client, namespace, DEBUG, Some(DEBUG_SUBRESOURCE)).await
}

/// The shells a terminal offers: the POSIX shell every image with a shell has, and bash where the image has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shell {
    /// `/bin/sh`.
    #[default]
    Sh,
    /// `/bin/bash`.
    Bash,
}

impl Shell {
    /// Every shell offered, the default first.
    pub const ALL: [Shell; 2] = [Shell::Sh, Shell::Bash];

    /// The program run.
    pub fn path(self) -> &'static str {
        match self {
            Shell::Sh => "/bin/sh",
            Shell::Bash => "/bin/bash",
        }
    }

    /// The shell whose [`Shell::path`] is `path`.
    pub fn parse(path: &str) -> Option<Shell> {
        Shell::ALL.into_iter().find(|shell| shell.path() == path)
    }
}

/// The size of a terminal, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Size {
    /// The size a browser asked for, kept within what a screen can hold (1 to 500 each way).
    pub fn bounded(cols: u16, rows: u16) -> Size {
        Size { cols: cols.clamp(1, 500), rows: rows.clamp(1, 500) }
    }
}

/// A pod's containers that are running now: where a terminal can go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// Its own containers (what a debug container can sit beside).
    pub containers: Vec<String>,
    /// Its ephemeral (debug) containers.
    pub debuggers: Vec<String>,
}

impl Running {
    /// Every running container, its own first.
    pub fn all(&self) -> Vec<String> {
        self.containers.iter().chain(&self.debuggers).cloned().collect()
    }
}

/// The containers of `pod` that are running now. `None` when the pod does not exist or its user may not read it.
pub async fn running_containers(client: &Client, namespace: &str, pod: &str) -> Result<Option<Running>, kube::Error> {
    if !crate::k8s::names::is_object_name(pod) {
        return Ok(None);
    }
    let pod = match Api::<Pod>::namespaced(client.clone(), namespace).get_opt(pod).await {
        Ok(pod) => pod,
        Err(kube::Error::Api(status)) if status.code == 403 => None,
        Err(error) => return Err(error),
    };
    let Some(status) = pod.and_then(|pod| pod.status) else { return Ok(None) };
    let running = |statuses: Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| -> Vec<String> {
        let running = statuses.into_iter().flatten().filter(|s| s.state.as_ref().is_some_and(|s| s.running.is_some()));
        running.map(|status| status.name).collect()
    };
    Ok(Some(Running {
        containers: running(status.container_statuses),
        debuggers: running(status.ephemeral_container_statuses),
    }))
}

/// Adds a debug container to `pod`, running `image` beside `target` (sharing its process namespace) for `lasting` (it
/// then ends; an ephemeral container cannot be removed, and goes with its pod), and waits until it runs, for at most
/// `patience`; its name, or `None` when it did not run in time. It runs as nobody (uid 65534) without privileges,
/// which Pod Security's `restricted` level (and so `baseline`) admits, and sets no environment, which the tenant guard
/// admits.
pub async fn add_debug_container(
    client: &Client,
    namespace: &str,
    pod: &str,
    target: &str,
    image: &str,
    lasting: Duration,
    patience: Duration,
) -> Result<Option<String>, kube::Error> {
    let random = getrandom::u32().unwrap_or_default();
    let name = format!("{DEBUG_PREFIX}{random:08x}");
    let debugger = json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", lasting.as_secs().to_string()],
        "targetContainerName": target,
        "stdin": true,
        "tty": true,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" },
        },
    });
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let patch = Patch::Strategic(json!({ "spec": { "ephemeralContainers": [debugger] } }));
    pods.patch_ephemeral_containers(pod, &PatchParams::default(), &patch).await?;
    let runs = |pod: Option<&Pod>| {
        let statuses = pod.and_then(|pod| pod.status.as_ref()).and_then(|s| s.ephemeral_container_statuses.as_ref());
        statuses.into_iter().flatten().any(|s| s.name == name && s.state.as_ref().is_some_and(|s| s.running.is_some()))
    };
    let running = kube::runtime::wait::await_condition(pods, pod, runs);
    match tokio::time::timeout(patience, running).await {
        Ok(Ok(_)) => Ok(Some(name)),
        Ok(Err(error)) => {
            tracing::info!(namespace, pod, %error, "could not follow a debug container's start");
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

/// A shell running in a container, with a terminal; the process ends when this is dropped (its connection to the
/// apiserver closes, and the shell with its terminal).
pub struct Terminal {
    /// What the user types.
    pub input: WriteHalf<SimplexStream>,
    /// What the terminal shows (the shell's output and the echo of the input).
    pub output: ReadHalf<SimplexStream>,
    resize: futures::channel::mpsc::Sender<TerminalSize>,
    status: Option<BoxFuture<'static, Option<Status>>>,
    _process: kube::api::AttachedProcess,
}

/// How a shell's process ended, once its output did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It ran and exited (with any code).
    Exited,
    /// It could not be started (no such shell in the image), and what the apiserver said.
    NotStarted(String),
}

impl Terminal {
    /// Tells the shell its terminal's new size; dropped when the apiserver has not taken the previous ones yet.
    pub fn resize(&mut self, size: Size) {
        let _ = self.resize.try_send(TerminalSize { width: size.cols, height: size.rows });
    }

    /// How the process ended, from the status the apiserver sends at its end (waited for a few seconds at most: a
    /// connection that broke sends none, and counts as an exit).
    pub async fn ended(&mut self) -> Ended {
        let Some(status) = self.status.take() else { return Ended::Exited };
        match tokio::time::timeout(Duration::from_secs(5), status).await {
            Ok(Some(status)) if status.status.as_deref() == Some("Failure") => match status.reason.as_deref() {
                Some("NonZeroExitCode") => Ended::Exited,
                _ => Ended::NotStarted(status.message.unwrap_or_default()),
            },
            _ => Ended::Exited,
        }
    }
}

/// Runs `shell` in `container` of `pod` with a terminal of `size`, as the user of `client`.
pub async fn open(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    shell: Shell,
    size: Size,
) -> Result<Terminal, kube::Error> {
    let params = AttachParams::interactive_tty()
        .container(container)
        .max_stdin_buf_size(BUFFER_BYTES)
        .max_stdout_buf_size(BUFFER_BYTES);
    let mut process = Api::<Pod>::namespaced(client.clone(), namespace).exec(pod, [shell.path()], &params).await?;
    let (Some(input), Some(output), Some(resize)) = (process.stdin(), process.stdout(), process.terminal_size()) else {
        unreachable!("an interactive terminal has input, output and a size");
    };
    let status = process.take_status().map(FutureExt::boxed);
    let mut terminal = Terminal { input, output, resize, status, _process: process };
    terminal.resize(size);
    Ok(terminal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_parsed_from_their_paths_only_and_sizes_are_bounded() {
        assert_eq!(Shell::parse("/bin/bash"), Some(Shell::Bash));
        assert_eq!(Shell::parse("/bin/sh"), Some(Shell::default()));
        assert_eq!(Shell::parse("/usr/bin/python3"), None, "nothing but the shells offered");
        assert_eq!(Size::bounded(0, 9999), Size { cols: 1, rows: 500 });
    }
}
