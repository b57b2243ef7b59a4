//! `securevox`: run the server, or administer its data from the command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use securevox::{cli, settings, telemetry, DatabaseAccess};
use securevox_api::Config;
use securevox_store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "securevox", version, about = "Self-hosted end-to-end encrypted chat and calls")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand takes; they override the file and the environment.
#[derive(Args)]
struct Common {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, secrets, files). Default ./data
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<String>,
    /// postgres://… to use PostgreSQL instead of SQLite.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Listen address, e.g. 0.0.0.0:8080 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the capacity report; exit 0 ok, 1 warning, 2 critical or blocked.
    Check {
        #[arg(long)]
        json: bool,
        /// Repeat until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between checks with --watch.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=settings::MAX_SECONDS))]
        interval: u64,
    },
    /// Remove sessions that expired or were revoked more than the retention period ago.
    Cleanup {
        #[arg(long)]
        json: bool,
    },
    /// Print the effective configuration (secrets hidden).
    Config,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from the first line of stdin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable an account; its sessions end at once.
    Disable { name: String },
    /// Enable a disabled account.
    Enable { name: String },
    /// Delete an account and its sessions.
    Delete { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Waits a little on waking while signaling is busy (`realtime.coalesce_us`).
        .on_thread_unpark(securevox_api::realtime::coalesce::on_worker_unpark)
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", securevox::flatten(e.as_ref()));
            ExitCode::from(64)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let env = std::env::vars().collect();
    let flags = [
        ("listen", listen),
        ("data_dir", cli.common.data_dir),
        ("database_url", cli.common.database_url),
        ("log_format", cli.common.log_format),
    ];
    let config = settings::load(cli.common.config.as_deref(), &env, &flags)?;
    telemetry::init(&config);

    if let Command::Serve { .. } = cli.command {
        // Database and secrets first, then the port: a client never reaches a server that is
        // still migrating, and a failed start leaves no port open.
        let state = securevox::prepare(config).await?;
        let listener = match tokio::net::TcpListener::bind(&state.config.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                state.store.close().await;
                return Err(e).with_context(|| format!("listening on {}", state.config.listen));
            }
        };
        let addr = listener.local_addr()?;
        println!("securevox listening on http://{addr}");
        securevox::run(state, listener, securevox::shutdown_signal()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Config = cli.command {
        cli::print_config(&config)?;
        return Ok(ExitCode::SUCCESS);
    }

    // Only `user add` may create the database (to add the first admin before the first
    // `serve`); the others work on an existing server's data. None of them touch secrets.
    let access = match cli.command {
        Command::User(UserCommand::Add { .. }) => DatabaseAccess::CreateIfMissing,
        _ => DatabaseAccess::Existing,
    };
    let store = securevox::open_store(&config, access).await?;
    let result = command(cli.command, &store, &config).await;
    store.close().await;
    result
}

async fn command(command: Command, store: &Store, config: &Config) -> Result<ExitCode> {
    Ok(match command {
        Command::User(UserCommand::Add { name, admin, display_name, .. }) => {
            let user = cli::user_add(store, config, &name, admin, display_name).await?;
            println!("created {} ({}, id {})", user.username, user.role.as_str(), user.id);
            cli::note_if_no_admin(store).await?;
            ExitCode::SUCCESS
        }
        Command::User(UserCommand::List { json }) => {
            cli::print_users(&store.list_users(i64::MAX, 0).await?, json);
            ExitCode::SUCCESS
        }
        Command::User(UserCommand::Disable { name }) => {
            cli::user_set_disabled(store, &name, true).await?;
            println!("disabled {name}; its sessions have ended");
            ExitCode::SUCCESS
        }
        Command::User(UserCommand::Enable { name }) => {
            cli::user_set_disabled(store, &name, false).await?;
            println!("enabled {name}");
            ExitCode::SUCCESS
        }
        Command::User(UserCommand::Delete { name }) => {
            cli::user_delete(store, &name).await?;
            println!("deleted {name}");
            ExitCode::SUCCESS
        }
        Command::Check { json, watch: true, interval } => {
            cli::check_watch(store, config, json, interval).await?;
            ExitCode::SUCCESS
        }
        Command::Check { json, watch: false, .. } => {
            ExitCode::from(cli::check_once(store, config, json).await?.exit_code())
        }
        Command::Cleanup { json } => {
            cli::cleanup(store, config, json).await?;
            ExitCode::SUCCESS
        }
        Command::Serve { .. } | Command::Config => unreachable!("handled before"),
    })
}
