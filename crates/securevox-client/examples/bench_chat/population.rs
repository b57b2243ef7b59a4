//! The population measured against: users registered with one real device each (identity key,
//! device vouched for by it, KeyPackages), real MLS groups joined by Welcome, and one
//! authenticated Socket.IO connection per device, naming that device.

use anyhow::{bail, Context as _, Result};
use securevox_client::live::Live;
use securevox_client::Client;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const PASSWORD: &str = "bench chat password";

/// `f` over `inputs`, `parallel` at a time on the runtime's threads; results in input order.
pub async fn in_parallel<I, T, F, Fut>(inputs: Vec<I>, parallel: usize, f: F) -> Result<Vec<T>>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    let count = inputs.len();
    for (i, input) in inputs.into_iter().enumerate() {
        let permits = permits.clone();
        let work = f(input);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            Ok::<_, anyhow::Error>((i, work.await?))
        });
    }
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, value) = joined??;
        slots[i] = Some(value);
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Registers `names` (the server must allow open registration), each with a device whose
/// profile lives in `root/<name>`.
pub async fn register(
    url: &str,
    root: &Path,
    names: Vec<String>,
    parallel: usize,
) -> Result<Vec<Client>> {
    in_parallel(names, parallel, |name| {
        let (url, dir) = (url.to_owned(), root.join(&name));
        async move {
            Client::register(&url, &dir, &name, PASSWORD, None)
                .await
                .with_context(|| format!("registering {name}"))
        }
    })
    .await
}

/// A group conversation and its members' clients; `members[0]` created it and sends.
pub struct Group {
    pub id: String,
    pub members: Vec<Client>,
}

/// `members[0]` creates a group of all of `members` (one Add Commit, one Welcome); every other
/// member joins from the Welcome in its inbox and checks the members' device signatures.
pub async fn form_group(name: &str, mut members: Vec<Client>, parallel: usize) -> Result<Group> {
    let others: Vec<String> = members[1..].iter().map(|c| c.username().to_owned()).collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let id = members[0].create_group(name, &others).await.context("creating the group")?;
    let creator = members.remove(0);
    let joined = in_parallel(members, parallel, |mut client| {
        let id = id.clone();
        async move {
            let report = client.sync().await?;
            if !report.joined.contains(&id) || !report.errors.is_empty() {
                bail!("{} did not join {id}: {report:?}", client.username());
            }
            if !report.warnings.is_empty() {
                bail!("{} sees unverified members: {:?}", client.username(), report.warnings);
            }
            Ok(client)
        }
    })
    .await?;
    let mut members = vec![creator];
    members.extend(joined);
    Ok(Group { id, members })
}

/// What a device's socket authenticates with.
#[derive(Clone)]
pub struct Credentials {
    pub token: String,
    pub device_id: String,
}

impl Credentials {
    pub fn of(client: &Client) -> Result<Self> {
        Ok(Self {
            token: client.profile().access_token.clone(),
            device_id: client.device_id()?.to_owned(),
        })
    }
}

/// Opens one Socket.IO connection per device (`auth: {token, deviceId}`).
pub async fn connect(url: &str, devices: Vec<Credentials>, parallel: usize) -> Result<Vec<Live>> {
    in_parallel(devices, parallel, |device| {
        let url = url.to_owned();
        async move {
            Live::connect(&url, &device.token, Some(&device.device_id))
                .await
                .with_context(|| format!("connecting device {}", device.device_id))
        }
    })
    .await
}
