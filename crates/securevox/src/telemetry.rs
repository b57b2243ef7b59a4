//! Logs go to stderr through `tracing`, as text or JSON; stdout is left to command output.

use securevox_api::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// The TURN protocol crates log every credential challenge (the first request of every
/// client) as an error; the embedded server reports what matters itself, so they stay quiet
/// unless RUST_LOG asks for them.
const QUIET_CRATES: &str = "stun_proto=off,stun_types=off,turn_types=off,turn_server_proto=off";

pub fn init(config: &Config) {
    // RUST_LOG, when set, wins over the configured level (handy when debugging).
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{},{QUIET_CRATES}", config.log_level)))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_CRATES}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
