//! Building and running the application: `Application::build(args, clock)`, then
//! `run_until(shutdown)`. `main` passes the system clock; tests pass a manual one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use tokio::net::TcpListener;

use crate::bootstrap::{first_start, Bootstrap, BootstrapError};
use crate::clock::Clock;
use crate::config::{ConfigError, ServeArgs};
use crate::directory::DirectoryError;
use crate::mail::delivery::{Transport, TransportError};
use crate::password::{PasswordError, PasswordHasher};
use crate::service::account::Account;
use crate::service::admin::Admin;
use crate::service::directory::{Directory, SessionChecker};
use crate::service::oidc::Oidc;
use crate::service::outbox::Worker;
use crate::service::signin::SignIn;
use crate::service::verify::SecondFactor;
use crate::service::{Context, ServiceConfig};
use crate::store::{Store, StoreError};
use crate::web::return_to::ReturnPolicy;
use crate::web::{router, AppState, ForwardAuth, Shared};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up password hashing: {0}")]
    Hasher(#[from] PasswordError),
    #[error("first start failed: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Mail(#[from] TransportError),
    #[error("cannot use the directory (--ldap-*): {0}")]
    Directory(#[from] DirectoryError),
    #[error("--ldap-role-map / --ldap-default-role name roles that do not exist: {}; create them first (System Settings > Roles) or fix the names", .0.join(", "))]
    DirectoryRoles(Vec<String>),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot set up the signing key of ID tokens: {0}")]
    SigningKey(#[from] crate::service::oidc::KeyError),
}

/// A built application: bound to its port, database open, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Worker,
    /// With a directory: the periodic check of signed-in directory users' entries.
    session_checker: Option<SessionChecker>,
    /// The store and the hasher the services were built on, for tools and tests.
    store: Store,
    hasher: PasswordHasher,
    /// Set on a new database without `TWOSTEP_ADMIN_PASSWORD`: print it once.
    pub generated_admin_password: Option<crate::password::Password>,
}

impl Application {
    pub async fn build(args: &ServeArgs, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        args.validate()?;
        let store = Store::open(&args.db.store_options(args.db_max_connections)).await?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let hasher = PasswordHasher::new(cores)?;
        let bootstrap = first_start(
            &store,
            &hasher,
            args.admin_password.clone(),
            &args.site_name,
            clock.now(),
            &mut OsRng,
        )
        .await?;
        let generated_admin_password = match bootstrap {
            Bootstrap::CreatedWithGeneratedPassword(password) => Some(password),
            Bootstrap::CreatedWithGivenPassword => {
                tracing::info!("created the administrator `admin` with TWOSTEP_ADMIN_PASSWORD");
                None
            }
            Bootstrap::Existing => None,
        };
        let directory = match args.ldap.setup().map_err(ConfigError::from)? {
            None => None,
            Some(setup) => {
                let roles = store.list_roles().await?;
                let known: Vec<&str> = roles.iter().map(|role| role.name.as_str()).collect();
                let unknown = setup
                    .role_map
                    .unknown_roles(setup.default_role.as_ref(), &known);
                if !unknown.is_empty() {
                    return Err(StartupError::DirectoryRoles(unknown));
                }
                let url = setup.client.url.clone();
                let directory = Directory::connect(setup, clock.now()).await?;
                tracing::info!(%url, "directory sign-in is on: the service account's bind succeeded");
                Some(Arc::new(directory))
            }
        };
        let ctx = Context::new(
            store.clone(),
            hasher.clone(),
            clock,
            ServiceConfig {
                site_name: args.site_name.clone(),
                mail_domain: args.mail_domain(),
                public_url: args.public_url.clone(),
                validate_clients: args.validate_clients.clone(),
            },
        );
        let session_check = Duration::from_secs(args.ldap.ldap_session_check_minutes * 60);
        let (ctx, session_checker) = match directory {
            Some(directory) => {
                let ctx = ctx.with_directory(directory);
                let checker = (!session_check.is_zero())
                    .then(|| SessionChecker::new(ctx.clone(), session_check));
                (ctx, checker)
            }
            None => (ctx, None),
        };
        let transport = match args.smtp() {
            Some(smtp) => {
                tracing::info!(host = %smtp.host, port = smtp.port, "emails are sent over SMTP");
                Transport::smtp(&smtp)?
            }
            None => {
                tracing::info!(folder = %args.mail_folder().display(), "no SMTP server configured: emails are written to the mail folder");
                Transport::Folder(args.mail_folder())
            }
        };
        let listener =
            TcpListener::bind(args.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    address: args.listen,
                    source,
                })?;
        // SPEC 13: the issuer is the public URL; without one, the address listened on
        // (what a browser on this machine reaches).
        let issuer = match &args.public_url {
            Some(url) => url.clone(),
            None => {
                let address = listener.local_addr().map_err(StartupError::Serve)?;
                format!("http://{address}")
            }
        };
        let oidc = Oidc::new(ctx.clone(), &issuer);
        oidc.ensure_signing_key().await?;
        let state = AppState::new(Shared {
            signin: SignIn::new(ctx.clone()),
            oidc,
            account: Account::new(ctx.clone()),
            admin: Admin::new(ctx.clone()),
            verify: SecondFactor::new(ctx.clone()),
            trusted_proxies: Arc::new(args.trusted_proxies.clone()),
            secure_cookies: args.secure_cookies(),
            forward_auth: Arc::new(ForwardAuth {
                public_url: args.public_url.clone(),
                returns: ReturnPolicy::new(
                    args.public_url.as_deref(),
                    args.redirect_domain_names()?,
                ),
                cookie_domain: args.session_cookie_domain()?,
            }),
            metrics_clients: Arc::new(args.metrics_clients.clone()),
        });
        Ok(Self {
            listener,
            state,
            worker: Worker::new(ctx, transport),
            session_checker,
            store,
            hasher,
            generated_admin_password,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, StartupError> {
        self.listener.local_addr().map_err(StartupError::Serve)
    }

    pub fn context(&self) -> &Context {
        self.state.signin.context()
    }

    /// The database the services use, for tools and tests that look at or prepare what
    /// is stored (request handlers go through the services).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The password hasher the services use (tests that store a user's password).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Serves until `shutdown` resolves, then finishes the requests under way (graceful
    /// shutdown) and stops the outbox worker.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(self.worker.run(Duration::from_secs(1), async {
            let _ = worker_stopped.await;
        }));
        let (stop_housekeeping, housekeeping_stopped) = tokio::sync::oneshot::channel::<()>();
        let housekeeping = tokio::spawn(crate::service::housekeeping::run(
            self.state.signin.context().clone(),
            async {
                let _ = housekeeping_stopped.await;
            },
        ));
        let (stop_sealer, sealer_stopped) = tokio::sync::oneshot::channel::<()>();
        let sealer = tokio::spawn(crate::service::audit_chain::run(
            self.state.signin.context().clone(),
            async {
                let _ = sealer_stopped.await;
            },
        ));
        let (stop_checker, checker_stopped) = tokio::sync::oneshot::channel::<()>();
        let checker = self.session_checker.map(|checker| {
            tokio::spawn(checker.run(async {
                let _ = checker_stopped.await;
            }))
        });
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        let _ = stop_worker.send(());
        let _ = stop_checker.send(());
        let _ = stop_housekeeping.send(());
        let _ = worker.await;
        let _ = housekeeping.await;
        let _ = stop_sealer.send(());
        let _ = sealer.await;
        if let Some(checker) = checker {
            let _ = checker.await;
        }
        served
    }
}
