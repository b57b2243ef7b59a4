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
use securevox_client::{
    safety, Client, Content, Device, Message, ReceiptStatus, TimelineEntry, Update,
};
use serde_json::{json, Value};
use std::fmt::Write as _;
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
        /// Codes may start with `-`, which is taken as the value, not as an option.
        #[arg(long, allow_hyphen_values = true)]
        invite: Option<String>,
    },
    /// Log in. In a new profile directory of an account that already has a device, this
    /// asks to link this device: it prints a code and waits until a signed-in device runs
    /// `link approve CODE`.
    Login {
        username: String,
        #[arg(long, env = "SECUREVOX_PASSWORD", hide_env_values = true)]
        password: String,
        /// Start a new identity instead of linking (for a lost last device): the account's
        /// other devices leave chat and contacts see its safety number change.
        #[arg(long)]
        new_identity: bool,
        /// How long to wait for the approval, in seconds.
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
    /// Link requests of new devices (approve from a device that is signed in).
    Link {
        #[command(subcommand)]
        command: LinkCommand,
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
    /// Sync, then show a conversation as it reads now: edits, deletions, reactions, receipts.
    Timeline { conversation_id: String },
    /// React to message SEQ with an emoji (or take it back with --remove).
    React {
        conversation_id: String,
        seq: i64,
        emoji: String,
        #[arg(long)]
        remove: bool,
    },
    /// Reword your own text message SEQ.
    Edit { conversation_id: String, seq: i64, text: String },
    /// Withdraw your own message SEQ.
    Delete { conversation_id: String, seq: i64 },
    /// Tell the group you read messages SEQ…
    Read { conversation_id: String, seqs: Vec<i64> },
    /// Tell the group's connected devices you are typing (or stopped, with --stop).
    Typing {
        conversation_id: String,
        #[arg(long)]
        stop: bool,
    },
    /// Encrypt and send a file.
    SendFile { conversation_id: String, path: PathBuf },
    /// Download and decrypt a file sent in a conversation (by its attachment id).
    FetchFile { conversation_id: String, attachment_id: String, out_path: PathBuf },
    /// List this account's devices.
    Devices,
    /// Remove one of this account's other devices (a lost phone): the other members' next
    /// messages remove it from every group.
    RemoveDevice { device_id: String },
    /// Show the safety number shared with a user.
    SafetyNumber { username: String },
    /// Fetch and process new messages.
    Sync,
    /// Stay connected and print messages (and typing) as they arrive, until interrupted;
    /// reconnects by itself. With --json, one JSON object per line: for bots.
    Listen,
}

#[derive(Subcommand)]
enum LinkCommand {
    /// List waiting requests with the code each new device shows.
    List,
    /// Approve the request whose new device shows this code (spaces allowed).
    Approve { code: Vec<String> },
    /// Refuse a request.
    Reject { id: String },
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
    /// Leave a group: nothing more reaches your devices; this device forgets the group.
    Leave { conversation_id: String },
    /// List the group's members as this device's MLS state has them (`user:device`).
    Members { conversation_id: String },
}

fn describe(message: &Message) -> String {
    let who = if message.outgoing { "me".to_owned() } else { message.sender_user_id.clone() };
    let what = match &message.content {
        Content::Text { body } => body.clone(),
        Content::File { attachment, name, size, .. } => {
            format!("[file {name}, {size} bytes, attachment {attachment}]")
        }
        Content::Reaction { target, emoji, remove } => {
            format!("[{} {emoji} to #{target}]", if *remove { "took back" } else { "reacted" })
        }
        Content::Edit { target, body } => format!("[edited #{target}: {body}]"),
        Content::Delete { target } => format!("[deleted #{target}]"),
        Content::Receipt { status, targets } => format!("[{status:?} {targets:?}]"),
        Content::Typing { active } => format!("[typing: {active}]"),
        Content::Unknown { raw } => format!("[unknown message: {raw}]"),
    };
    format!(
        "{} {} #{} <{who}> {what}",
        message.time,
        message.conversation_id,
        message.seq.unwrap_or(0)
    )
}

fn describe_entry(entry: &TimelineEntry) -> String {
    let mut line = if entry.deleted {
        let m = &entry.message;
        format!("{} #{} <{}> [deleted]", m.time, m.seq.unwrap_or(0), m.sender_user_id)
    } else {
        describe(&entry.message)
    };
    if entry.edited {
        line.push_str(" (edited)");
    }
    for (emoji, users) in &entry.reactions {
        let _ = write!(line, " {emoji}×{}", users.len());
    }
    if !entry.read_by.is_empty() {
        let _ = write!(line, " read by {}", entry.read_by.len());
    }
    line
}

/// The commands that read messages and act on them.
async fn act(dir: &Path, command: &Command) -> anyhow::Result<(Value, String)> {
    let mut client = Client::open(dir)?;
    let message = match command {
        Command::Sync => {
            let report = client.sync().await?;
            let mut lines: Vec<String> = report.messages.iter().map(describe).collect();
            lines.extend(report.joined.iter().map(|id| format!("joined {id}")));
            lines.extend(report.removed_from.iter().map(|id| format!("removed from {id}")));
            lines.extend(report.errors.iter().map(|e| format!("error: {e}")));
            lines.extend(report.warnings.iter().map(|w| format!("WARNING: {w}")));
            return Ok((json!(report), lines.join("\n")));
        }
        Command::Messages { conversation_id } => {
            let report = client.sync().await?;
            for error in &report.errors {
                eprintln!("error: {error}");
            }
            for warning in &report.warnings {
                eprintln!("WARNING: {warning}");
            }
            let messages = client.history(conversation_id.as_deref())?;
            let text = messages.iter().map(describe).collect::<Vec<_>>().join("\n");
            return Ok((json!(messages), text));
        }
        Command::Timeline { conversation_id } => {
            client.sync().await?;
            let entries = client.timeline(conversation_id)?;
            let text = entries.iter().map(describe_entry).collect::<Vec<_>>().join("\n");
            return Ok((json!(entries), text));
        }
        Command::Typing { conversation_id, stop } => {
            let devices = client.send_typing(conversation_id, !stop).await?;
            return Ok((json!({"devices": devices}), format!("told {devices} devices")));
        }
        Command::React { conversation_id, seq, emoji, remove } => {
            client.react(conversation_id, *seq, emoji, *remove).await?
        }
        Command::Edit { conversation_id, seq, text } => {
            client.edit(conversation_id, *seq, text).await?
        }
        Command::Delete { conversation_id, seq } => client.delete(conversation_id, *seq).await?,
        Command::Read { conversation_id, seqs } => {
            client.send_receipt(conversation_id, ReceiptStatus::Read, seqs).await?
        }
        _ => anyhow::bail!("not a message action"),
    };
    Ok((json!(message), describe(&message)))
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
        GroupCommand::Leave { conversation_id } => {
            client.leave(conversation_id).await?;
            (json!({"conversation_id": conversation_id}), format!("left {conversation_id}"))
        }
        GroupCommand::Members { conversation_id } => {
            let members = client.members(conversation_id)?;
            let text = members.join("\n");
            (json!(members), text)
        }
    })
}

async fn link(dir: &Path, command: &LinkCommand) -> anyhow::Result<(Value, String)> {
    let mut client = Client::open(dir)?;
    Ok(match command {
        LinkCommand::List => {
            let requests = client.link_requests().await?;
            let text = requests
                .iter()
                .map(|r| {
                    let name = r.name.as_deref().unwrap_or("-");
                    format!("{} {name} code {} ({})", r.id, safety::display(&r.code), r.created_at)
                })
                .collect::<Vec<_>>()
                .join("\n");
            (json!(requests), text)
        }
        LinkCommand::Approve { code } => {
            let device = client.approve_link(&code.join("")).await?;
            (json!(device), format!("linked device {}", device.id))
        }
        LinkCommand::Reject { id } => {
            client.reject_link(id).await?;
            (json!({"rejected": id}), format!("rejected {id}"))
        }
    })
}

/// Prints what arrives until Ctrl-C.
async fn listen(dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut client = Client::open(dir)?;
    let print = |update: Update| {
        let lines: Vec<(Value, String)> = match update {
            Update::Synced(report) => {
                let mut lines: Vec<(Value, String)> =
                    report.messages.iter().map(|m| (json!(m), describe(m))).collect();
                lines.extend(
                    report.joined.iter().map(|id| (json!({"joined": id}), format!("joined {id}"))),
                );
                lines.extend(
                    report
                        .warnings
                        .iter()
                        .map(|w| (json!({"warning": w}), format!("WARNING: {w}"))),
                );
                lines
            }
            Update::Ephemeral(message) => vec![(json!(message), describe(&message))],
            Update::Connected => vec![(json!({"connected": true}), "connected".to_owned())],
            Update::Disconnected(wait) => vec![(
                json!({"connected": false, "retry_s": wait.as_secs()}),
                format!("disconnected; retrying in {} s", wait.as_secs()),
            )],
        };
        for (value, text) in lines {
            if json {
                println!("{value}");
            } else {
                println!("{text}");
            }
        }
        true
    };
    tokio::select! {
        result = Box::pin(client.listen(print)) => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Logs in; on a new device of an account that has devices, asks to link it and waits.
async fn login_or_link(
    server: &str,
    dir: &Path,
    username: &str,
    password: &str,
    wait: u64,
    json: bool,
) -> anyhow::Result<Client> {
    match Client::login(server, dir, username, password).await {
        Err(securevox_client::Error::LinkRequired) => {}
        other => return Ok(other?),
    }
    let pending = Client::start_link(server, dir, username, password).await?;
    let code = pending.code();
    if json {
        println!("{}", json!({"link_id": pending.id(), "link_code": code}));
    } else {
        println!(
            "This account has devices already. On one of them, run:\n  \
             securevox-cli link approve {code}\nWaiting for the approval…"
        );
    }
    Ok(pending.wait(std::time::Duration::from_secs(wait)).await?)
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
        Command::Login { username, password, new_identity, wait } => {
            let server = server(&cli)?;
            let client = if *new_identity {
                Client::login_new_identity(server, dir, username, password).await?
            } else {
                login_or_link(server, dir, username, password, *wait, cli.json).await?
            };
            out(
                json!({"user_id": client.user_id(), "username": client.username(), "device_id": client.device_id()?}),
                format!("logged in as {} (device {})", client.username(), client.device_id()?),
            );
        }
        Command::Link { command } => {
            let (value, text) = link(dir, command).await?;
            out(value, text);
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
        Command::Listen => listen(dir, cli.json).await?,
        Command::Sync
        | Command::Messages { .. }
        | Command::Timeline { .. }
        | Command::React { .. }
        | Command::Edit { .. }
        | Command::Delete { .. }
        | Command::Read { .. }
        | Command::Typing { .. } => {
            let (value, text) = act(dir, &cli.command).await?;
            out(value, text);
        }
        Command::Devices => {
            let devices = Client::open(dir)?.devices().await?;
            let text = devices.iter().map(describe_device).collect::<Vec<_>>().join("\n");
            out(json!(devices), text);
        }
        Command::RemoveDevice { device_id } => {
            Client::open(dir)?.remove_device(device_id).await?;
            out(json!({"removed": device_id}), format!("removed device {device_id}"));
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

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn an_invite_code_may_start_with_a_dash() {
        // Invite codes are base64url: one in 64 starts with `-` (CI once drew one).
        let cli = Cli::try_parse_from([
            "securevox-cli",
            "register",
            "bob",
            "--invite",
            "-CptiByddoeJnNBRiTwZ1A",
            "--password",
            "correct horse",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Register { invite: Some(ref code), .. }
            if code == "-CptiByddoeJnNBRiTwZ1A"));
    }
}
