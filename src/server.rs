//! The HTTP servers: the OSB routes plus the probes on one listener, the tenant dashboard on another, both over plain
//! HTTP or both over TLS, stopping gracefully on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use kube::Client;

use crate::broker::{Broker, BrokerOptions};
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::k8s::ClusterEndpoint;
use crate::osb::{self, middleware::Credentials};

/// The broker both faces share.
pub fn broker(
    settings: &Settings,
    catalog: Catalog,
    client: Client,
    endpoint: ClusterEndpoint,
) -> Result<Arc<Broker>, String> {
    let options = BrokerOptions::from_settings(settings);
    let secret = settings.dashboard.cf_sso.as_ref().map(|cf| cf.client_secret.as_str());
    let catalog = catalog.for_dashboard(secret, options.dashboard_base_url.as_deref());
    let broker = Arc::new(Broker::new(catalog, client, endpoint, options)?);
    broker.watch_records();
    broker.repair_drift();
    Ok(broker)
}

/// The tenant dashboard over `broker`, bound to `bound`; `cluster` is the broker's client configuration, whose
/// apiserver and CA signed-in users' clients share (with their own token).
pub fn dashboard_app(settings: &Settings, broker: Arc<Broker>, cluster: kube::Config, bound: SocketAddr) -> Router {
    crate::dashboard::router(broker, crate::dashboard::DashboardOptions::from_settings(settings, bound), cluster)
        .layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// The OSB API and the probes over `broker`.
pub fn osb_app(settings: &Settings, broker: Arc<Broker>) -> Router {
    let credentials = Credentials::new(&settings.auth.username, &settings.auth.password);
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(broker.clone());
    osb::router(broker, credentials, settings.limits.body_bytes)
        .merge(probes)
        .layer(axum::middleware::from_fn(osb::middleware::request_context))
}

/// Ready only when the apiserver answers: a broker that cannot reach the cluster should not get traffic.
async fn readyz(State(broker): State<osb::BrokerState>) -> (StatusCode, &'static str) {
    let probe = tokio::time::timeout(Duration::from_secs(3), broker.client().apiserver_version()).await;
    match probe {
        Ok(Ok(_)) => (StatusCode::OK, "ok"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the Kubernetes API does not answer"),
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
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.encode(),
    )
}

/// The cluster client the settings describe (a kubeconfig file and context, or in-cluster / `KUBECONFIG`), the
/// endpoint bound applications are given (`kubernetes.public_server` / `public_ca_file`, or the client's own), and the
/// client's configuration (the dashboard's users reach the same apiserver with it, with their own tokens).
pub async fn kube_client(settings: &Settings) -> Result<(Client, ClusterEndpoint, kube::Config), String> {
    let options =
        kube::config::KubeConfigOptions { context: settings.kubernetes.context.clone(), ..Default::default() };
    let mut config = match &settings.kubernetes.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("kubernetes.kubeconfig: cannot read {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("kubernetes.kubeconfig: {e}"))?
        }
        None if settings.kubernetes.context.is_some() => {
            kube::Config::from_kubeconfig(&options).await.map_err(|e| format!("kubernetes.context: {e}"))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration found (set KUBECONFIG or kubernetes.kubeconfig): {e}"))?,
    };
    let timeout = Duration::from_secs(settings.kubernetes.request_timeout_seconds);
    config.connect_timeout = Some(Duration::from_secs(5).min(timeout));
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    let mut endpoint = ClusterEndpoint::from_config(&config);
    if let Some(server) = &settings.kubernetes.public_server {
        endpoint.server = server.trim_end_matches('/').to_owned();
    }
    if let Some(path) = &settings.kubernetes.public_ca_file {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("kubernetes.public_ca_file: {e}"))?;
        endpoint.ca_pem = Some(pem);
    }
    let client = kube::client::ClientBuilder::try_from(config.clone())
        .map_err(|e| format!("cannot build the Kubernetes client: {e}"))?
        .with_layer(&crate::metrics::ApiserverTiming)
        .build();
    Ok((client, endpoint, config))
}

/// Binds the dashboard's listener before anything is built, so that a `dashboard.listen` with port 0 (tests) is
/// known when the dashboard URL is derived from it.
pub fn bind_dashboard(settings: &Settings) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(settings.dashboard.listen)
        .map_err(|e| anyhow::anyhow!("dashboard.listen: cannot listen on {}: {e}", settings.dashboard.listen))?;
    Ok(listener)
}

/// Serves the OSB API on `listen` and the dashboard on its listener until SIGTERM or Ctrl-C, then lets in-flight
/// requests finish.
pub async fn serve(settings: &Settings, app: Router, dashboard: (std::net::TcpListener, Router)) -> anyhow::Result<()> {
    let handles = [axum_server::Handle::new(), axum_server::Handle::new()];
    let shutdown = handles.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        for handle in shutdown {
            handle.graceful_shutdown(Some(Duration::from_secs(30)));
        }
    });
    let [osb_handle, dashboard_handle] = handles;
    let (dashboard_listener, dashboard_app) = dashboard;
    let dashboard_address = dashboard_listener.local_addr()?;
    let service = app.into_make_service();
    let dashboard_service = dashboard_app.into_make_service();
    match &settings.tls {
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
            tracing::info!(address = %settings.listen, "serving OSB API over TLS");
            tracing::info!(address = %dashboard_address, "serving the dashboard over TLS");
            let osb = axum_server::bind_rustls(settings.listen, config.clone()).handle(osb_handle).serve(service);
            let dashboard = axum_server::from_tcp_rustls(dashboard_listener, config)?
                .handle(dashboard_handle)
                .serve(dashboard_service);
            tokio::try_join!(osb, dashboard)?;
        }
        None => {
            tracing::info!(address = %settings.listen, "serving OSB API over HTTP");
            tracing::info!(address = %dashboard_address, "serving the dashboard over HTTP");
            let osb = axum_server::bind(settings.listen).handle(osb_handle).serve(service);
            let dashboard =
                axum_server::from_tcp(dashboard_listener)?.handle(dashboard_handle).serve(dashboard_service);
            tokio::try_join!(osb, dashboard)?;
        }
    }
    Ok(())
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
