//! The HTTP servers: the OSB routes plus the probes on one listener, the tenant dashboard on another, both over plain
//! HTTP or both over TLS, with timeouts and a connection cap that keep anyone from holding them, stopping gracefully
//! on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use kube::Client;

use crate::catalog::Catalog;
use crate::config::{LimitSettings, Settings};
use crate::k8s::ClusterEndpoint;
use crate::lifecycle::fleet::health::Health;
use crate::lifecycle::fleet::{Fleet, Member};
use crate::lifecycle::parameters::SchemaError;
use crate::lifecycle::tenant_guard::Verdict;
use crate::lifecycle::{Broker, BrokerOptions};
use crate::osb::{self, middleware::Credentials};

mod connections;

use connections::Capped;

/// The broker both faces share.
pub fn broker(
    settings: &Settings,
    catalog: Catalog,
    client: Client,
    endpoint: ClusterEndpoint,
) -> Result<Arc<Broker>, SchemaError> {
    broker_on(settings, settings.home_cluster_name(), catalog, client, endpoint)
}

/// The broker of the cluster called `cluster_name`, which `client` reaches.
fn broker_on(
    settings: &Settings,
    cluster_name: &str,
    catalog: Catalog,
    client: Client,
    endpoint: ClusterEndpoint,
) -> Result<Arc<Broker>, SchemaError> {
    let mut options = BrokerOptions::from_settings(settings);
    options.cluster_name = cluster_name.to_owned();
    let secret = settings.dashboard.cf_sso.as_ref().map(|cf| cf.client_secret.as_str());
    let catalog = catalog.for_dashboard(secret, options.dashboard_base_url.as_deref());
    let broker = Arc::new(Broker::new(catalog, client, endpoint, options)?);
    broker.watch_records();
    broker.watch_tenant_guard();
    broker.repair_drift();
    broker.stop_idle_sessions();
    broker.account_usage();
    Ok(broker)
}

/// Every cluster of the settings (`clusters`), each with its own client and broker, the home connected as
/// `kubernetes` says; one cluster when the list is empty.
pub async fn fleet(settings: &Settings, catalog: Catalog) -> anyhow::Result<Arc<Fleet>> {
    let (client, endpoint, config) = kube_client(settings).await.map_err(anyhow::Error::msg)?;
    let home = settings.clusters.iter().find(|cluster| cluster.home);
    let mut members = vec![Member {
        name: settings.home_cluster_name().to_owned(),
        home: true,
        labels: home.map(|home| home.labels.clone()).unwrap_or_default(),
        weight: home.map_or(1, |home| home.weight),
        cordoned: home.is_some_and(|home| home.cordoned),
        broker: broker(settings, catalog.clone(), client, endpoint).map_err(anyhow::Error::msg)?,
        config,
        health: Health::default(),
    }];
    for cluster in settings.clusters.iter().filter(|cluster| !cluster.home) {
        let connection = Connection {
            kubeconfig: cluster.kubeconfig.as_deref(),
            context: cluster.context.as_deref(),
            public_server: cluster.public_server.as_deref(),
            public_ca_file: cluster.public_ca_file.as_deref(),
        };
        let (client, endpoint, config) = connection
            .client(settings.kubernetes.request_timeout_seconds)
            .await
            .map_err(|error| anyhow::anyhow!("clusters: {}: {error}", cluster.name))?;
        let broker =
            broker_on(settings, &cluster.name, catalog.clone(), client, endpoint).map_err(anyhow::Error::msg)?;
        members.push(Member {
            name: cluster.name.clone(),
            home: false,
            labels: cluster.labels.clone(),
            weight: cluster.weight,
            cordoned: cluster.cordoned,
            broker,
            config,
            health: Health::default(),
        });
    }
    let fleet = Arc::new(Fleet::new(members));
    fleet.start();
    Ok(fleet)
}

/// The OSB API, the probes and (see [`osb_app`]) `/metrics` over every cluster of `fleet`: [`osb_app`] itself with
/// one cluster.
pub fn osb_fleet_app(settings: &Settings, fleet: Arc<Fleet>) -> Router {
    if fleet.is_single() {
        return osb_app(settings, fleet.home().broker.clone());
    }
    let credentials = || Arc::new(Credentials::new(&settings.auth.username, &settings.auth.password));
    let routes = fleet
        .members()
        .iter()
        .map(|member| {
            let credentials = Credentials::new(&settings.auth.username, &settings.auth.password);
            (member.name.clone(), osb::router(member.broker.clone(), credentials, settings.limits.body_bytes))
        })
        .collect();
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(fleet_readyz))
        .with_state(fleet.clone());
    let brokers = fleet.members().iter().map(|member| member.broker.clone()).collect();
    let usage = osb::usage::router(brokers, credentials());
    let mut app =
        osb::fleet::router(fleet.clone(), routes, credentials(), settings.limits.body_bytes).merge(probes).merge(usage);
    if settings.metrics.listen.is_none() {
        let authenticated = axum::middleware::from_fn_with_state(credentials(), osb::middleware::authenticate);
        app = app.merge(metrics_fleet_app(fleet).layer(authenticated));
    }
    app.layer(body_timeout(settings)).layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// The tenant dashboard over every cluster of `fleet` (see [`dashboard_app`]).
pub fn dashboard_fleet_app(settings: &Settings, fleet: Arc<Fleet>, bound: SocketAddr) -> Router {
    if fleet.is_single() {
        let home = fleet.home();
        return dashboard_app(settings, home.broker.clone(), home.config.clone(), bound);
    }
    crate::dashboard::fleet::router(fleet, crate::dashboard::DashboardOptions::from_settings(settings, bound))
        .layer(body_timeout(settings))
        .layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// `/metrics` over every cluster of `fleet` (see [`metrics_app`]).
pub fn metrics_fleet_app(fleet: Arc<Fleet>) -> Router {
    if fleet.is_single() {
        return metrics_app(fleet.home().broker.clone());
    }
    Router::new().route("/metrics", get(fleet_metrics)).with_state(fleet)
}

/// Ready while the home cluster is (see [`readyz`]): the body lists the other clusters that cannot be used now,
/// whose instances answer 503 while provisions go elsewhere.
async fn fleet_readyz(State(fleet): State<Arc<Fleet>>) -> (StatusCode, String) {
    let (status, home) = readyz(State(fleet.home().broker.clone())).await;
    let mut lines = vec![home];
    lines.extend(fleet.troubles());
    (status, lines.join("\n"))
}

/// Prometheus metrics over every cluster: instances summed, each cluster's gauges, the home's copy of the records.
async fn fleet_metrics(State(fleet): State<Arc<Fleet>>) -> impl axum::response::IntoResponse {
    let metrics = crate::metrics::global();
    match fleet.count_instances().await {
        Ok(counts) => metrics.set_instances(&counts),
        Err(error) => tracing::warn!(%error, "could not count instances for /metrics"),
    }
    metrics.set_cache(&fleet.home().broker.cache_figures());
    exposition()
}

/// The tenant dashboard over `broker`, bound to `bound`; `cluster` is the broker's client configuration, whose
/// apiserver and CA signed-in users' clients share (with their own token).
pub fn dashboard_app(settings: &Settings, broker: Arc<Broker>, cluster: kube::Config, bound: SocketAddr) -> Router {
    crate::dashboard::router(broker, crate::dashboard::DashboardOptions::from_settings(settings, bound), cluster)
        .layer(body_timeout(settings))
        .layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// The OSB API and the probes over `broker`, and `/metrics` behind the OSB API's credentials unless it has a listener
/// of its own (`metrics.listen`: see [`metrics_app`]).
pub fn osb_app(settings: &Settings, broker: Arc<Broker>) -> Router {
    let credentials = || Credentials::new(&settings.auth.username, &settings.auth.password);
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(broker.clone());
    let usage = osb::usage::router(vec![broker.clone()], Arc::new(credentials()));
    let mut app = osb::router(broker.clone(), credentials(), settings.limits.body_bytes).merge(probes).merge(usage);
    if settings.metrics.listen.is_none() {
        let authenticated =
            axum::middleware::from_fn_with_state(Arc::new(credentials()), osb::middleware::authenticate);
        app = app.merge(metrics_app(broker).layer(authenticated));
    }
    app.layer(body_timeout(settings)).layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// `/metrics` alone: merged into the OSB API behind its credentials, or served on `metrics.listen` without them.
pub fn metrics_app(broker: Arc<Broker>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(broker)
}

/// Answers 408 when a request body pauses longer than `limits.body_timeout_seconds` between two of its parts.
fn body_timeout(settings: &Settings) -> tower_http::timeout::RequestBodyTimeoutLayer {
    tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(settings.limits.body_timeout_seconds))
}

/// Ready only when the apiserver answers and the tenant guard the broker requires is in force (see
/// [`crate::lifecycle::tenant_guard`]): a broker that cannot reach the cluster, or would make tenants that can undo
/// their isolation, should not get traffic. The body names what is wrong.
async fn readyz(State(broker): State<osb::BrokerState>) -> (StatusCode, String) {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why);
    let checks = async { tokio::join!(broker.client().apiserver_version(), broker.tenant_guard()) };
    match tokio::time::timeout(Duration::from_secs(3), checks).await {
        Ok((Ok(_), None | Some(Verdict::InForce))) => (StatusCode::OK, "ok".to_owned()),
        Ok((Ok(_), Some(verdict))) => unavailable(verdict.describe()),
        _ => unavailable("the Kubernetes API does not answer".to_owned()),
    }
}

/// Prometheus metrics; the instance counts are read from the cluster first (a failure leaves the last counts).
async fn metrics(State(broker): State<osb::BrokerState>) -> impl axum::response::IntoResponse {
    let metrics = crate::metrics::global();
    match broker.count_instances().await {
        Ok(counts) => metrics.set_instances(&counts),
        Err(error) => tracing::warn!(%error, "could not count instances for /metrics"),
    }
    metrics.set_cache(&broker.cache_figures());
    exposition()
}

/// Every metric of the process, in the OpenMetrics text format.
fn exposition() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        crate::metrics::global().encode(),
    )
}

/// Why no cluster client could be made from the settings; what it says names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ClusterClientError {
    /// `kubernetes.kubeconfig` cannot be read.
    #[error("kubernetes.kubeconfig: cannot read {}: {source}", path.display())]
    ReadKubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// `kubernetes.kubeconfig` holds no usable configuration.
    #[error("kubernetes.kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// `kubernetes.context` is not a usable context of `KUBECONFIG`.
    #[error("kubernetes.context: {0}")]
    Context(#[source] kube::config::KubeconfigError),
    /// Neither in the cluster nor with a kubeconfig.
    #[error("no Kubernetes configuration found (set KUBECONFIG or kubernetes.kubeconfig): {0}")]
    NoConfiguration(#[source] kube::config::InferConfigError),
    /// `kubernetes.public_ca_file` cannot be read.
    #[error("kubernetes.public_ca_file: {0}")]
    PublicCa(#[source] std::io::Error),
    /// The configuration does not make a client (its TLS settings, say).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// The cluster client the settings describe (a kubeconfig file and context, or in-cluster / `KUBECONFIG`), the
/// endpoint bound applications are given (`kubernetes.public_server` / `public_ca_file`, or the client's own), and the
/// client's configuration (the dashboard's users reach the same apiserver with it, with their own tokens).
pub async fn kube_client(settings: &Settings) -> Result<(Client, ClusterEndpoint, kube::Config), ClusterClientError> {
    let kubernetes = &settings.kubernetes;
    let connection = Connection {
        kubeconfig: kubernetes.kubeconfig.as_deref(),
        context: kubernetes.context.as_deref(),
        public_server: kubernetes.public_server.as_deref(),
        public_ca_file: kubernetes.public_ca_file.as_deref(),
    };
    connection.client(kubernetes.request_timeout_seconds).await
}

/// How the broker reaches one cluster, and what bound applications are told of it.
struct Connection<'a> {
    kubeconfig: Option<&'a std::path::Path>,
    context: Option<&'a str>,
    public_server: Option<&'a str>,
    public_ca_file: Option<&'a std::path::Path>,
}

impl Connection<'_> {
    /// The client, the endpoint bound applications are given and the client's configuration (see [`kube_client`]).
    async fn client(
        &self,
        request_timeout_seconds: u64,
    ) -> Result<(Client, ClusterEndpoint, kube::Config), ClusterClientError> {
        let options =
            kube::config::KubeConfigOptions { context: self.context.map(str::to_owned), ..Default::default() };
        let mut config = match self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|source| ClusterClientError::ReadKubeconfig { path: path.to_owned(), source })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(ClusterClientError::Kubeconfig)?
            }
            None if self.context.is_some() => {
                kube::Config::from_kubeconfig(&options).await.map_err(ClusterClientError::Context)?
            }
            None => kube::Config::infer().await.map_err(ClusterClientError::NoConfiguration)?,
        };
        let timeout = Duration::from_secs(request_timeout_seconds);
        config.connect_timeout = Some(Duration::from_secs(5).min(timeout));
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let mut endpoint = ClusterEndpoint::from_config(&config);
        if let Some(server) = self.public_server {
            endpoint.server = server.trim_end_matches('/').to_owned();
        }
        if let Some(path) = self.public_ca_file {
            let pem = std::fs::read_to_string(path).map_err(ClusterClientError::PublicCa)?;
            endpoint.ca_pem = Some(pem);
        }
        let client = kube::client::ClientBuilder::try_from(config.clone())
            .map_err(ClusterClientError::Client)?
            .with_layer(&crate::metrics::ApiserverTiming)
            .build();
        Ok((client, endpoint, config))
    }
}

/// Binds the dashboard's listener before anything is built, so that a `dashboard.listen` with port 0 (tests) is
/// known when the dashboard URL is derived from it.
pub fn bind_dashboard(settings: &Settings) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(settings.dashboard.listen)
        .map_err(|e| anyhow::anyhow!("dashboard.listen: cannot listen on {}: {e}", settings.dashboard.listen))?;
    Ok(listener)
}

/// Serves the OSB API on `listen`, the dashboard on its listener and, when `metrics.listen` is set, `/metrics` on its
/// own, until SIGTERM or Ctrl-C, then lets in-flight requests finish. Every listener speaks HTTP/1.1 only (with
/// upgrades, for the noVNC WebSocket) so that one set of limits covers every connection: a request head must arrive
/// within `limits.header_timeout_seconds` (which also ends a kept-alive connection idle that long), and at most
/// `limits.max_connections` connections are held at once (see [`connections`]).
pub async fn serve(
    settings: &Settings,
    app: Router,
    dashboard: (std::net::TcpListener, Router),
    metrics: Option<Router>,
) -> anyhow::Result<()> {
    let handles = [axum_server::Handle::new(), axum_server::Handle::new(), axum_server::Handle::new()];
    let shutdown = handles.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        for handle in shutdown {
            handle.graceful_shutdown(Some(Duration::from_secs(30)));
        }
    });
    let [osb_handle, dashboard_handle, metrics_handle] = handles;
    let (dashboard_listener, dashboard_app) = dashboard;
    let dashboard_address = dashboard_listener.local_addr()?;
    let limits = &settings.limits;
    let service = Capped::new(app.into_make_service(), limits.max_connections);
    // The client's address reaches the handlers: the sign-in limits count attempts per address.
    let dashboard_service =
        Capped::new(dashboard_app.into_make_service_with_connect_info::<SocketAddr>(), limits.max_connections);
    let metrics = async {
        let (Some(listen), Some(metrics)) = (settings.metrics.listen, metrics) else { return Ok(()) };
        tracing::info!(address = %listen, "serving /metrics over HTTP");
        let service = Capped::new(metrics.into_make_service(), limits.max_connections);
        limited(axum_server::bind(listen), limits).handle(metrics_handle).serve(service).await
    };
    match &settings.tls {
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
            let mut http1 = (*config.get_inner()).clone();
            http1.alpn_protocols = vec![b"http/1.1".to_vec()];
            let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(http1));
            tracing::info!(address = %settings.listen, "serving OSB API over TLS");
            tracing::info!(address = %dashboard_address, "serving the dashboard over TLS");
            let osb = limited(axum_server::bind_rustls(settings.listen, config.clone()), limits)
                .handle(osb_handle)
                .serve(service);
            let dashboard = limited(axum_server::from_tcp_rustls(dashboard_listener, config)?, limits)
                .handle(dashboard_handle)
                .serve(dashboard_service);
            tokio::try_join!(osb, dashboard, metrics)?;
        }
        None => {
            tracing::info!(address = %settings.listen, "serving OSB API over HTTP");
            tracing::info!(address = %dashboard_address, "serving the dashboard over HTTP");
            let osb = limited(axum_server::bind(settings.listen), limits).handle(osb_handle).serve(service);
            let dashboard = limited(axum_server::from_tcp(dashboard_listener)?, limits)
                .handle(dashboard_handle)
                .serve(dashboard_service);
            tokio::try_join!(osb, dashboard, metrics)?;
        }
    }
    Ok(())
}

/// `server` speaking HTTP/1.1 only, with the head timeout of `limits` for the first request and every later one.
fn limited<A: axum_server::Address, Acceptor>(
    mut server: axum_server::Server<A, Acceptor>,
    limits: &LimitSettings,
) -> axum_server::Server<A, Acceptor> {
    let head = Duration::from_secs(limits.header_timeout_seconds);
    let builder = server.http_builder();
    let fresh = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    *builder = std::mem::replace(builder, fresh).http1_only();
    builder.http1().header_read_timeout(head);
    server.first_request_timeout(head)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
}
