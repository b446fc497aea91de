//! A shell in a container of one of the tenant's pods, opened as the signed-in user with their own client: the
//! apiserver's `pods/exec` (WebSocket, `v5.channel.k8s.io`, negotiated by kube) with a terminal, so Kubernetes' RBAC
//! decides (`create pods/exec`: the `edit` and `admin` roles, not `view`). What the terminal's page carries over the
//! browser's WebSocket is the dashboard's; this module only opens the process and hands out its input, output and
//! resize channel.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, TerminalSize};
use kube::{Api, Client};
use tokio::io::{ReadHalf, SimplexStream, WriteHalf};

use crate::k8s::access::{self, Permission};

/// What a terminal needs: `create` on `pods/exec` ([`EXEC_SUBRESOURCE`]).
pub const EXEC: Permission<'static> = Permission { verb: "create", group: "", resource: "pods" };
/// The subresource of [`EXEC`].
pub const EXEC_SUBRESOURCE: &str = "exec";

/// The most bytes of input or output buffered between the browser and the apiserver, each way.
const BUFFER_BYTES: usize = 64 * 1024;

/// Whether the identity of `client` may open a terminal in `namespace`; the dashboard shows the control only then.
pub async fn may_open(client: &Client, namespace: &str) -> Result<bool, kube::Error> {
    access::allowed_on(client, namespace, EXEC, Some(EXEC_SUBRESOURCE)).await
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

/// The names of `pod`'s containers that are running now (regular ones first, then ephemeral ones): where a terminal
/// can go. `None` when the pod does not exist or its user may not read it.
pub async fn running_containers(
    client: &Client,
    namespace: &str,
    pod: &str,
) -> Result<Option<Vec<String>>, kube::Error> {
    if !crate::k8s::names::is_object_name(pod) {
        return Ok(None);
    }
    let pod = match Api::<Pod>::namespaced(client.clone(), namespace).get_opt(pod).await {
        Ok(pod) => pod,
        Err(kube::Error::Api(status)) if status.code == 403 => None,
        Err(error) => return Err(error),
    };
    let Some(status) = pod.and_then(|pod| pod.status) else { return Ok(None) };
    let statuses =
        status.container_statuses.iter().flatten().chain(status.ephemeral_container_statuses.iter().flatten());
    let running = statuses.filter(|status| status.state.as_ref().is_some_and(|state| state.running.is_some()));
    Ok(Some(running.map(|status| status.name.clone()).collect()))
}

/// A shell running in a container, with a terminal; the process ends when this is dropped (its connection to the
/// apiserver closes, and the shell with its terminal).
pub struct Terminal {
    /// What the user types.
    pub input: WriteHalf<SimplexStream>,
    /// What the terminal shows (the shell's output and the echo of the input).
    pub output: ReadHalf<SimplexStream>,
    resize: futures::channel::mpsc::Sender<TerminalSize>,
    _process: kube::api::AttachedProcess,
}

impl Terminal {
    /// Tells the shell its terminal's new size; dropped when the apiserver has not taken the previous ones yet.
    pub fn resize(&mut self, size: Size) {
        let _ = self.resize.try_send(TerminalSize { width: size.cols, height: size.rows });
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
    let mut terminal = Terminal { input, output, resize, _process: process };
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
