//! The `caas-broker` command: serve the OSB API and the tenant dashboard, or check a catalog file.

use std::path::PathBuf;
use std::process::ExitCode;

use caas_broker::catalog::Catalog;
use caas_broker::config::Settings;
use caas_broker::{server, telemetry};

const USAGE: &str = "usage:
  caas-broker [serve] [--config FILE]   serve the OSB API and the dashboard (configuration: defaults, FILE, CAAS_BROKER__* variables)
  caas-broker catalog check FILE        check a catalog file and say what is wrong with it
  caas-broker config check FILE         check a configuration file (with the environment) without starting
  caas-broker tenant-guard apply [--config FILE] --kubeconfig FILE
                                        install the tenant guard the configuration names (policy.tenant_guard),
                                        with the credentials in the kubeconfig FILE (an operator's), and wait until
                                        it is in force";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["catalog", "check", file] => check_catalog(PathBuf::from(file)),
        ["config", "check", file] => match Settings::load(Some(std::path::Path::new(file))) {
            Ok(_) => {
                println!("{file}: OK");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("caas-broker: {message}");
                ExitCode::from(78)
            }
        },
        ["tenant-guard", "apply", "--kubeconfig", kubeconfig] => apply_tenant_guard(None, kubeconfig),
        ["tenant-guard", "apply", "--config", file, "--kubeconfig", kubeconfig] => {
            apply_tenant_guard(Some(PathBuf::from(file)), kubeconfig)
        }
        [] | ["serve"] => run(std::env::var_os("CAAS_BROKER_CONFIG").map(PathBuf::from)),
        ["--config", file] | ["serve", "--config", file] => run(Some(PathBuf::from(file))),
        ["--help"] | ["-h"] | ["help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check_catalog(file: PathBuf) -> ExitCode {
    match Catalog::from_file(&file) {
        Ok(catalog) => {
            let plans: usize = catalog.services.iter().map(|s| s.plans.len()).sum();
            println!("{}: OK ({} services, {plans} plans)", file.display(), catalog.services.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{}: {error}", file.display());
            }
            eprintln!("{}: {} problem(s)", file.display(), errors.len());
            ExitCode::FAILURE
        }
    }
}

/// `caas-broker tenant-guard apply`: the guard the configuration names, applied with `kubeconfig`'s credentials.
fn apply_tenant_guard(config_file: Option<PathBuf>, kubeconfig: &str) -> ExitCode {
    let mut settings = match Settings::load(config_file.as_deref()) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("caas-broker: {message}");
            return ExitCode::from(78);
        }
    };
    settings.kubernetes.kubeconfig = Some(PathBuf::from(kubeconfig));
    settings.kubernetes.context = None;
    let applied = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            runtime.block_on(async {
                let (client, _, _) = server::kube_client(&settings).await.map_err(anyhow::Error::msg)?;
                let name = &settings.policy.tenant_guard;
                caas_broker::lifecycle::tenant_guard::apply(&client, name, &settings.kubernetes.identity_namespace)
                    .await
                    .map_err(anyhow::Error::msg)
            })
        });
    match applied {
        Ok(names) => {
            for name in names {
                println!("applied {name}");
            }
            println!("the tenant guard {} is in force", settings.policy.tenant_guard);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("caas-broker: tenant guard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(config_file: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(config_file.as_deref()) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("caas-broker: {message}");
            return ExitCode::from(78);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("caas-broker: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("caas-broker: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start(settings: Settings) -> anyhow::Result<()> {
    let catalog = match &settings.catalog {
        Some(path) => Catalog::from_file(path).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("catalog {} is invalid:\n  {}", path.display(), lines.join("\n  "))
        })?,
        None => Catalog::built_in(),
    };
    if settings.auth.password == caas_broker::config::DEV_PASSWORD {
        tracing::warn!(
            "using the development credentials broker/broker-dev-password: set auth.password for anything shared"
        );
    }
    let dashboard_listener = server::bind_dashboard(&settings)?;
    let dashboard_address = dashboard_listener.local_addr()?;
    let mut settings = settings;
    settings.dashboard.base_url = settings.published_dashboard_url(dashboard_address);
    let fleet = server::fleet(&settings, catalog).await?;
    let dashboard = server::dashboard_fleet_app(&settings, fleet.clone(), dashboard_address);
    let metrics = settings.metrics.listen.is_some().then(|| server::metrics_fleet_app(fleet.clone()));
    let app = server::osb_fleet_app(&settings, fleet);
    server::serve(&settings, app, (dashboard_listener, dashboard), metrics).await
}
