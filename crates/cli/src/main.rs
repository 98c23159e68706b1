//! `tailor`: the one binary. `serve` runs the API and console, `demo` does the same on The
//! Complete Journey, `import` loads files, `keys` manages API keys, `bench` measures.

mod assistant;
mod bench;
mod bench_assistant;
mod bench_inventory;
mod bench_journeys;
mod bench_prices;
mod bench_serve;
mod campaigns;
mod campaigns_sendtime;
mod mail;
mod pricing;
mod pricing_elasticity;
mod pricing_simulate;
mod progress;
mod recs;
mod recs_cart;
mod search_eval;
mod smtp_sink;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tailor_engine::import::{ImportKind, Progress};
use tailor_engine::{Engine, EngineConfig, Scope, Storage};

/// mimalloc: a request allocates and frees many short buffers on every worker thread, where
/// glibc's allocator spent a sixth of the serving benchmark's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tailor", version, about = "Personalization and omnichannel engine for retailers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where state lives: an embedded data directory (default) or a PostgreSQL URL.
#[derive(Args, Clone)]
struct StorageArgs {
    /// Directory of the embedded SQLite store.
    #[arg(long, env = "TAILOR__DATA_DIR", default_value = "./tailor-data")]
    data_dir: PathBuf,
    /// A postgres://user:password@host/db URL; overrides --data-dir.
    #[arg(long, env = "TAILOR__DATABASE__URL")]
    database: Option<String>,
}

/// How the HTTP server listens: the operations address and the limits file.
#[derive(Args, Clone)]
struct HttpArgs {
    /// Address for /metrics (no key) and /healthz, e.g. 127.0.0.1:9090; keep it private.
    /// Without it, /metrics on the public address needs the admin key.
    #[arg(long, env = "TAILOR__OPS_LISTEN")]
    ops_listen: Option<SocketAddr>,
    /// A JSON file of connection and rate limits (see `ServerLimits`); unnamed fields keep their defaults.
    #[arg(long, env = "TAILOR__LIMITS")]
    limits: Option<PathBuf>,
}

impl HttpArgs {
    /// Binds the operations address and reads the limits file.
    async fn prepare(&self) -> Result<(Option<tokio::net::TcpListener>, tailor_server::ServerLimits)> {
        let limits = match &self.limits {
            None => tailor_server::ServerLimits::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                let limits: tailor_server::ServerLimits = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a valid limits file", path.display()))?;
                limits.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                limits
            }
        };
        let ops = match self.ops_listen {
            None => None,
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?)
            }
        };
        Ok((ops, limits))
    }
}

impl StorageArgs {
    fn storage(&self) -> Storage {
        match &self.database {
            Some(url) => Storage::Url(url.clone()),
            None => Storage::Embedded(self.data_dir.clone()),
        }
    }

    async fn open(&self, background: bool) -> Result<Engine> {
        self.open_with(background, None).await
    }

    async fn open_with(&self, background: bool, retrain_every: Option<std::time::Duration>) -> Result<Engine> {
        Engine::open(EngineConfig { storage: self.storage(), background, retrain_every })
            .await
            .context("cannot open the store (check --data-dir or --database)")
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the console.
    Serve {
        #[command(flatten)]
        storage: StorageArgs,
        /// Address to listen on.
        #[arg(long, env = "TAILOR__LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Retrain the recommendation model every this many hours when new orders came in (0: never).
        #[arg(long, env = "TAILOR__RETRAIN_HOURS", default_value_t = 24.0)]
        retrain_hours: f64,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        mail: mail::MailArgs,
    },
    /// Train the recommendation model on every order, the catalog and the stores; the server
    /// picks the new version up at its next start (POST /v1/models/train swaps it live).
    Train {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Load The Complete Journey on first start, then serve the API and console on it.
    Demo {
        /// Directory of the embedded store.
        #[arg(long, default_value = "./tailor-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The shared folder holding data/completejourney.
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Import products, locations, customers or orders from CSV or Parquet.
    Import {
        /// What the file holds.
        kind: Kind,
        /// The CSV or Parquet file.
        file: PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
        /// Where to write rejected rows (default: FILE's name + .rejects.csv in this directory).
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Train on a train split and write top-k recommendations for every user of a test split.
    RecommendBatch {
        /// Train CSV (user,item,timestamp,...), optionally .gz.
        #[arg(long)]
        train: PathBuf,
        /// Test CSV, optionally .gz (needed by the novel and repeats protocols).
        #[arg(long)]
        test: Option<PathBuf>,
        /// Carts to complete, case,user,cart,hidden as cart.py writes them (the cart protocol):
        /// writes case,item,rank.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Items per user.
        #[arg(long, default_value_t = 20)]
        k: usize,
        /// novel: already-bought items removed; repeats: they may appear; cart: complete the
        /// baskets of --cases.
        #[arg(long, value_enum, default_value = "novel")]
        protocol: recs::ProtocolArg,
        /// Where to write user,item,rank.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        model: recs::ModelArgs,
    },
    /// Score a recommendations file: HR@10, NDCG@10, Recall@20, Coverage@10 as score.py defines them.
    Eval {
        /// Train CSV.
        #[arg(long, required_unless_present = "cases")]
        train: Option<PathBuf>,
        /// Test CSV.
        #[arg(long, required_unless_present = "cases")]
        test: Option<PathBuf>,
        /// user,item,rank CSV (case,item,rank with --cases).
        #[arg(long)]
        recs: PathBuf,
        /// Score carts instead (cart.py's protocol): the case,user,cart,hidden file.
        #[arg(long, conflicts_with_all = ["train", "test", "repeats"])]
        cases: Option<PathBuf>,
        /// Repeat-aware protocol.
        #[arg(long)]
        repeats: bool,
    },
    /// Personalized search against plain BM25 on a train/test split: NDCG@10 of each test
    /// purchase for a query made from its category.
    SearchEval(search_eval::SearchEvalArgs),
    /// Benchmarks that print ratios against a baseline run in the same process.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Campaign intelligence: uplift targeting from a past campaign.
    Campaigns {
        #[command(subcommand)]
        command: campaigns::CampaignsCommand,
    },
    /// The shopping assistant: train understanding, evaluate it.
    Assistant {
        #[command(subcommand)]
        command: assistant::AssistantCommand,
    },
    /// Model files the engine reads (the sentence encoder).
    Models {
        #[command(subcommand)]
        command: assistant::ModelsCommand,
    },
    /// Pricing: the elasticity report and the simulator.
    Pricing {
        #[command(subcommand)]
        command: pricing::PricingCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it on stdout (and nothing else).
    Create {
        /// write (browser/app events: behaviour only, safe in a page), source (server-side
        /// events: sales that earn points and move stock), read, checkout (reservations),
        /// pos (till sales and redemption) or admin.
        #[arg(long)]
        scope: String,
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        name: String,
        /// The source its events come from (`messageId`s are unique per source); the name if absent.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List every key (never their secrets).
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke a key: refused from the next request on, on every node.
    Revoke {
        /// The key's id, from `tailor keys list`.
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Replace a key by a new one of the same scope and source; print the new secret.
    Rotate {
        /// The key's id, from `tailor keys list`.
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Products,
    Locations,
    Customers,
    Orders,
    Stock,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAILOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs();
    match cli.command {
        Command::Serve { storage, listen, retrain_hours, http, mail } => {
            let every = (retrain_hours > 0.0).then(|| std::time::Duration::from_secs_f64(retrain_hours * 3600.0));
            let engine = storage.open_with(true, every).await?;
            mail.apply(&engine)?;
            serve(engine, listen, None, &http).await
        }
        Command::Train { storage } => {
            let engine = storage.open(false).await?;
            let summary = train(&engine).await?;
            engine.close().await;
            println!(
                "model version {} trained in {:.1} s on {} purchase lines, {} customers, {} products",
                summary.version, summary.seconds, summary.interactions, summary.customers, summary.products
            );
            if let Some((repeats, novel)) = summary.validation_ndcg {
                println!("validation NDCG@10: {repeats:.4} (lists with repeat purchases), {novel:.4} (discovery)");
            }
            Ok(())
        }
        Command::Demo { data_dir, listen, shared, http } => demo(data_dir, listen, shared, &http).await,
        Command::Import { kind, file, storage, rejects } => {
            let engine = storage.open(false).await?;
            let kind = match kind {
                Kind::Products => ImportKind::Products,
                Kind::Locations => ImportKind::Locations,
                Kind::Customers => ImportKind::Customers,
                Kind::Orders => ImportKind::Orders,
                Kind::Stock => ImportKind::Stock,
            };
            let bar = progress::Bar::new();
            let mut report = engine.import(kind, &file, &bar).await?;
            bar.finish();
            let rejects = rejects.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}.rejects.csv",
                    file.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
                ))
            });
            report.write_rejects(&rejects).context("cannot write the rejects file")?;
            if matches!(kind, ImportKind::Customers | ImportKind::Orders) {
                let bar = progress::Bar::new();
                bar.stage("resolving customers");
                engine.sync().await?;
                bar.finish();
            }
            println!("{} rows read, {} accepted, {} rejected", report.rows, report.accepted, report.rejected.len());
            if let Some(path) = &report.rejects_file {
                println!("rejected rows and reasons: {}", path.display());
                for r in report.rejected.iter().take(5) {
                    println!("  row {}: {} {}", r.row, r.column, r.reason);
                }
            }
            engine.close().await;
            Ok(())
        }
        Command::Keys { command } => keys(command).await,
        Command::Bench { command } => bench::run(command).await,
        Command::Pricing { command } => pricing::run(command).await,
        Command::Assistant { command } => assistant::run(command),
        Command::Models { command } => assistant::run_models(command),
        Command::Campaigns { command } => campaigns::run(command),
        Command::RecommendBatch { train, test, cases, k, protocol, out, model } => match (protocol, test, cases) {
            (recs::ProtocolArg::Cart, _, Some(cases)) => recs_cart::recommend_carts(&train, &cases, k, &out, model),
            (recs::ProtocolArg::Cart, _, None) => bail!("--protocol cart needs --cases CASES.csv"),
            (_, Some(test), None) => recs::recommend_batch(&train, &test, k, protocol, &out, model),
            (_, _, Some(_)) => bail!("--cases goes with --protocol cart"),
            (_, None, None) => bail!("--test is required with --protocol novel or repeats"),
        },
        Command::Eval { train, test, recs: file, repeats, cases } => match (cases, train, test) {
            (Some(cases), _, _) => recs_cart::eval_carts(&cases, &file),
            (None, Some(train), Some(test)) => recs::eval(&train, &test, &file, repeats),
            _ => bail!("eval needs --train and --test, or --cases"),
        },
        Command::SearchEval(args) => search_eval::run(args),
    }
}

/// `tailor keys …`: create, list, revoke and rotate API keys.
async fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { scope, name, source, storage } => {
            let Some(scope) = Scope::parse(&scope) else {
                bail!("--scope must be one of write, source, read, checkout, pos, agent, admin")
            };
            let engine = storage.open(false).await?;
            let key = engine.new_key(scope, &name, source.as_deref().unwrap_or(&name)).await;
            engine.close().await;
            println!("{}", key?.secret);
        }
        KeysCommand::List { storage } => {
            let engine = storage.open(false).await?;
            let keys = engine.keys().await;
            engine.close().await;
            println!("{:<38} {:<9} {:<20} {:<20} {:<21} revoked", "id", "scope", "name", "source", "created");
            for k in keys? {
                let revoked = k.revoked_at.unwrap_or_else(|| "-".into());
                println!(
                    "{:<38} {:<9} {:<20} {:<20} {:<21} {revoked}",
                    k.id,
                    k.scope.as_str(),
                    k.name,
                    k.source,
                    k.created_at
                );
            }
        }
        KeysCommand::Revoke { id, storage } => {
            let engine = storage.open(false).await?;
            let key = engine.revoke_key(&id).await;
            engine.close().await;
            let key = key?;
            println!("revoked {} ({} key '{}')", key.id, key.scope.as_str(), key.name);
        }
        KeysCommand::Rotate { id, storage } => {
            let engine = storage.open(false).await?;
            let key = engine.rotate_key(&id).await;
            engine.close().await;
            println!("{}", key?.secret);
        }
    }
    Ok(())
}

/// Trains the recommendation model with a spinner showing the stage.
async fn train(engine: &Engine) -> Result<tailor_engine::TrainSummary> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("training the recommendation model");
    let b = bar.clone();
    let summary = engine.train_model(std::sync::Arc::new(move |m: &str| b.set_message(m.to_string()))).await;
    bar.finish_and_clear();
    Ok(summary?)
}

async fn serve(engine: Engine, listen: SocketAddr, banner: Option<String>, http: &HttpArgs) -> Result<()> {
    let (ops, limits) = http.prepare().await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("Tailor listening on http://{addr}");
    if let Some(b) = banner {
        println!("{b}");
    }
    tailor_server::serve_with(engine.clone(), listener, ops, limits).await?;
    engine.close().await;
    Ok(())
}

async fn demo(data_dir: PathBuf, listen: SocketAddr, shared: PathBuf, http: &HttpArgs) -> Result<()> {
    let (ops, limits) = http.prepare().await?;
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(data_dir.clone()),
        background: true,
        retrain_every: Some(std::time::Duration::from_secs(24 * 3600)),
    })
    .await?;
    let admin = engine.create_key(Scope::Admin, "demo admin").await?;
    let write = engine.create_key(Scope::Write, "demo write").await?;
    let source = engine.create_key(Scope::Source, "demo shop server").await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(tailor_server::serve_with(engine.clone(), listener, ops, limits));
    println!("Tailor demo listening on http://{addr}");
    println!("  console:   http://{addr}/console#key={admin}");
    println!("  API docs:  http://{addr}/docs");
    println!("  assistant: http://{addr}/assistant#key={write}&open=true   (inbox: http://{addr}/console/inbox)");
    println!("  admin key: {admin}");
    println!("  write key: {write}   (browser/app events: behaviour only)");
    println!("  source key: {source}   (server-side orders: earn points, move stock)");
    if !engine.demo_loaded().await? {
        let data = shared.join("data").join("completejourney");
        let started = std::time::Instant::now();
        let bar = progress::Bar::new();
        let summary = engine.load_demo(&data, &bar).await?;
        bar.stage("resolving customers");
        let head = engine.log().head().await?;
        bar.total(head as u64);
        loop {
            let done = engine.log().cursor("profiles").await?;
            bar.set(done as u64);
            if done >= head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        bar.finish();
        let (stocked, sold_out) = engine.seed_demo_stock().await?;
        engine.seed_demo_loyalty().await?;
        let priced = engine.seed_demo_prices().await?;
        println!("Stocked {stocked} store-product pairs from the last eight weeks of sales; {sold_out} are sold out");
        println!("Priced {priced} products at the unit price they most often sold at");
        println!(
            "Loaded The Complete Journey in {:.0} s: {} products, {} stores, {} households, {} store orders, {} web/app/support events",
            started.elapsed().as_secs_f64(),
            summary.products,
            summary.stores,
            summary.households,
            summary.orders,
            summary.omnichannel_events
        );
    } else {
        println!("Reusing the demo data in {}", data_dir.display());
    }
    if engine.model_version().is_none() {
        let summary = train(&engine).await?;
        println!("Recommendation model v{} trained in {:.0} s", summary.version, summary.seconds);
    }
    let card = tailor_core::Identifier::parse(tailor_core::IdentifierKind::LoyaltyCard, "1", "loyaltyCard")?;
    if let Some(profile) = engine.lookup(&card).await? {
        println!("Try: curl -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/recommendations?user={profile}&context=home'");
    }
    let (_, _, email, _) = tailor_engine::import::demo::contact("1");
    println!("Try: curl -H 'Authorization: Bearer {admin}' 'http://{addr}/v1/profiles/lookup?loyaltyCard=1'");
    println!("     (household 1 shops in store; some households also browse the web as e.g. {email})");
    server.await??;
    engine.close().await;
    Ok(())
}
