//! `securevox-cli`: a command-line SecureVox client (one device per profile directory).
//!
//! ```text
//! securevox-cli --server URL --profile DIR [--json] <command>
//! ```
//! `--server` is needed for `register` and `login` only (the profile remembers it). Passwords
//! come from `--password` or `SECUREVOX_PASSWORD`. `fetch-file` takes the attachment id shown
//! by `messages` for a file message. With `--json` every command prints one JSON value.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use securevox_client::{safety, Client, Content, Device, Message};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "securevox-cli", version, about = "SecureVox end-to-end encrypted chat client")]
struct Cli {
    /// Server base URL (for register and login; later commands use the profile's).
    #[arg(long, env = "SECUREVOX_SERVER", global = true)]
    server: Option<String>,
    /// Profile directory: account, device keys, MLS state and message log (keep it private).
    #[arg(long, env = "SECUREVOX_PROFILE", global = true, default_value = "securevox-profile")]
    profile: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account and set up this device.
    Register {
        username: String,
        #[arg(long, env = "SECUREVOX_PASSWORD", hide_env_values = true)]
        password: String,
        /// Invite code (needed unless registration is open or this is the first account).
        #[arg(long)]
        invite: Option<String>,
    },
    /// Log in. In a new profile directory this creates a new identity key, which makes the
    /// server drop the account's other devices.
    Login {
        username: String,
        #[arg(long, env = "SECUREVOX_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Contacts.
    Contact {
        #[command(subcommand)]
        command: ContactCommand,
    },
    /// Group conversations.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Send a text message.
    Send { conversation_id: String, text: String },
    /// Sync, then show the message history (of one conversation if given).
    Messages { conversation_id: Option<String> },
    /// Encrypt and send a file.
    SendFile { conversation_id: String, path: PathBuf },
    /// Download and decrypt a file sent in a conversation (by its attachment id).
    FetchFile { conversation_id: String, attachment_id: String, out_path: PathBuf },
    /// List this account's devices.
    Devices,
    /// Show the safety number shared with a user.
    SafetyNumber { username: String },
    /// Fetch and process new messages.
    Sync,
}

#[derive(Subcommand)]
enum ContactCommand {
    /// Add a user to your contacts.
    Add { username: String },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group with the given members; prints its conversation id.
    Create { name: String, members: Vec<String> },
    /// Add a user to a group.
    Add { conversation_id: String, username: String },
    /// Remove a user (all their devices) from a group.
    Remove { conversation_id: String, username: String },
    /// Update this device's keys in a group (a self-update Commit).
    UpdateKeys { conversation_id: String },
}

fn describe(message: &Message) -> String {
    let who = if message.outgoing { "me".to_owned() } else { message.sender_user_id.clone() };
    let what = match &message.content {
        Content::Text { body } => body.clone(),
        Content::File { attachment, name, size, .. } => {
            format!("[file {name}, {size} bytes, attachment {attachment}]")
        }
        Content::Unknown { raw } => format!("[unknown message: {raw}]"),
    };
    format!(
        "{} {} #{} <{who}> {what}",
        message.time,
        message.conversation_id,
        message.seq.unwrap_or(0)
    )
}

fn describe_device(device: &Device) -> String {
    let mark = if device.current { " (this device)" } else { "" };
    let name = device.name.as_deref().unwrap_or("-");
    format!("{} {name} created {}{mark}", device.id, device.created_at)
}

async fn group(dir: &Path, command: &GroupCommand) -> anyhow::Result<(Value, String)> {
    let mut client = Client::open(dir)?;
    Ok(match command {
        GroupCommand::Create { name, members } => {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            let id = client.create_group(name, &members).await?;
            (json!({"conversation_id": id}), id)
        }
        GroupCommand::Add { conversation_id, username } => {
            let user = client.add_to_group(conversation_id, username).await?;
            let text = format!("added {} to {conversation_id}", user.username);
            (json!(user), text)
        }
        GroupCommand::Remove { conversation_id, username } => {
            let user = client.remove_from_group(conversation_id, username).await?;
            let text = format!("removed {} from {conversation_id}", user.username);
            (json!(user), text)
        }
        GroupCommand::UpdateKeys { conversation_id } => {
            client.update_keys(conversation_id).await?;
            (json!({"conversation_id": conversation_id}), "keys updated".to_owned())
        }
    })
}

fn server(cli: &Cli) -> anyhow::Result<&str> {
    cli.server.as_deref().context("--server URL is needed for this command")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.profile.as_path();
    let out = |value: serde_json::Value, text: String| {
        if cli.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    match &cli.command {
        Command::Register { username, password, invite } => {
            let client =
                Client::register(server(&cli)?, dir, username, password, invite.as_deref()).await?;
            out(
                json!({"user_id": client.user_id(), "username": client.username(), "device_id": client.device_id()?}),
                format!("registered {} (device {})", client.username(), client.device_id()?),
            );
        }
        Command::Login { username, password } => {
            let client = Client::login(server(&cli)?, dir, username, password).await?;
            out(
                json!({"user_id": client.user_id(), "username": client.username(), "device_id": client.device_id()?}),
                format!("logged in as {} (device {})", client.username(), client.device_id()?),
            );
        }
        Command::Contact { command: ContactCommand::Add { username } } => {
            let user = Client::open(dir)?.add_contact(username).await?;
            out(json!(user), format!("added {} ({})", user.username, user.id));
        }
        Command::Group { command } => {
            let (value, text) = group(dir, command).await?;
            out(value, text);
        }
        Command::Send { conversation_id, text } => {
            let message = Client::open(dir)?.send_text(conversation_id, text).await?;
            out(json!(message), describe(&message));
        }
        Command::SendFile { conversation_id, path } => {
            let message = Client::open(dir)?.send_file(conversation_id, path).await?;
            out(json!(message), describe(&message));
        }
        Command::FetchFile { conversation_id, attachment_id, out_path } => {
            let file =
                Client::open(dir)?.fetch_file(conversation_id, attachment_id, out_path).await?;
            out(
                json!(file),
                format!(
                    "{} ({} bytes, sha256 {}) written to {}",
                    file.name,
                    file.size,
                    file.sha256,
                    file.path.display()
                ),
            );
        }
        Command::Sync => {
            let report = Client::open(dir)?.sync().await?;
            let mut lines: Vec<String> = report.messages.iter().map(describe).collect();
            lines.extend(report.joined.iter().map(|id| format!("joined {id}")));
            lines.extend(report.removed_from.iter().map(|id| format!("removed from {id}")));
            lines.extend(report.errors.iter().map(|e| format!("error: {e}")));
            lines.extend(report.warnings.iter().map(|w| format!("WARNING: {w}")));
            out(json!(report), lines.join("\n"));
        }
        Command::Messages { conversation_id } => {
            let mut client = Client::open(dir)?;
            let report = client.sync().await?;
            for error in &report.errors {
                eprintln!("error: {error}");
            }
            for warning in &report.warnings {
                eprintln!("WARNING: {warning}");
            }
            let messages = client.history(conversation_id.as_deref())?;
            let text = messages.iter().map(describe).collect::<Vec<_>>().join("\n");
            out(json!(messages), text);
        }
        Command::Devices => {
            let devices = Client::open(dir)?.devices().await?;
            let text = devices.iter().map(describe_device).collect::<Vec<_>>().join("\n");
            out(json!(devices), text);
        }
        Command::SafetyNumber { username } => {
            let number = Client::open(dir)?.safety_number(username).await?;
            out(json!({"username": username, "safety_number": number}), safety::display(&number));
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if json {
                let code = error
                    .downcast_ref::<securevox_client::Error>()
                    .and_then(securevox_client::Error::code)
                    .unwrap_or("client_error");
                eprintln!("{}", json!({"error": {"code": code, "message": error.to_string()}}));
            } else {
                eprintln!("error: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
