//! `horizon keys create|list|revoke`: API keys in the same store as `serve`
//! (`--data-dir`, or `--store` with `--namespace` in distributed mode).
//!
//! `create` prints the new key once, on its last line; only its hash is kept.

use anyhow::Context;
use clap::{Args, Subcommand};
use protocol::Tenant;
use std::path::PathBuf;
use std::sync::Arc;
use store::{KeyStore, NewKey, SqliteStore};

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    /// Directory of the embedded store (used without --store).
    #[arg(
        long,
        env = "HORIZON_DATA_DIR",
        default_value = "./horizon-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Distributed mode: the PostgreSQL registry, e.g. postgres://postgres@127.0.0.1:5432/horizon.
    #[arg(long, env = "HORIZON_STORE", global = true)]
    store: Option<String>,
    /// Distributed mode: the deployment's namespace (its PostgreSQL schema).
    #[arg(
        long,
        env = "HORIZON_NAMESPACE",
        default_value = "horizon",
        global = true
    )]
    namespace: String,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Make a key for a tenant and print it (on the last line, shown once).
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// List the keys (ids, never secrets), all or one tenant's.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key of a tenant, given by its id or whole.
    Revoke {
        #[arg(long)]
        tenant: String,
        key: String,
    },
}

fn tenant(name: &str) -> anyhow::Result<Tenant> {
    Tenant::parse(name).map_err(anyhow::Error::msg)
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    crate::serve::init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(keys(args))
}

async fn open(args: &KeysArgs) -> anyhow::Result<Arc<dyn KeyStore>> {
    match &args.store {
        Some(url) => {
            let cluster = crate::distributed::ClusterArgs::for_namespace(&args.namespace);
            let pg = cluster.connect_store(url).await?;
            Ok(Arc::new(pg.keys()))
        }
        None => {
            // Listing or revoking in a mistyped directory would make an
            // empty store there and find nothing; a first key may make one.
            let creates = matches!(args.command, KeysCommand::Create { .. });
            let db = args.data_dir.join(store::sqlite::DB_FILE);
            if !creates && !db.exists() {
                anyhow::bail!(
                    "no store in {} (no {}); give the --data-dir that `horizon serve` uses",
                    args.data_dir.display(),
                    store::sqlite::DB_FILE
                );
            }
            Ok(Arc::new(
                SqliteStore::open_keys(&args.data_dir)
                    .await
                    .with_context(|| format!("opening the store in {}", args.data_dir.display()))?,
            ))
        }
    }
}

async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let store = open(&args).await?;
    match &args.command {
        KeysCommand::Create { tenant: name } => {
            let key = NewKey::generate(&tenant(name)?);
            store.insert_key(&key).await.context("storing the key")?;
            println!(
                "created key {} for tenant {name}; it is shown only now:",
                key.id
            );
            println!("{}", key.plaintext);
        }
        KeysCommand::List { tenant: name } => {
            let tenant = name.as_deref().map(tenant).transpose()?;
            println!("{:<16}  {:<24}  {:<8}  created", "id", "tenant", "status");
            for k in store.list_keys(tenant.as_ref()).await? {
                let created = std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(u64::try_from(k.created_at_ms).unwrap_or(0));
                println!(
                    "{:<16}  {:<24}  {:<8}  {}",
                    k.id,
                    k.tenant.as_str(),
                    if k.revoked { "revoked" } else { "live" },
                    humantime::format_rfc3339_seconds(created)
                );
            }
        }
        KeysCommand::Revoke { tenant: name, key } => {
            if !store.revoke_key(&tenant(name)?, key).await? {
                anyhow::bail!("tenant {name} has no live key '{key}'");
            }
            println!("revoked");
        }
    }
    Ok(())
}
