//! End-to-end encrypted chat over real HTTP with real MLS clients (openmls): a group is
//! created, members are added by Commit + Welcome, messages go both ways through device
//! inboxes, two Commits race for one epoch (one wins, the other rebases, all converge), and
//! what the server stored holds no plaintext.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{code, Backend, Session, TestServer};
use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    members_talk_through_the_delivery_service,
    one_commit_wins_each_epoch,
    attachments_are_opaque_and_for_members_only,
    no_plaintext_in_storage_logs_or_traffic,
);

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// One device of a user: its session, MLS signer and key storage, and its groups.
struct Client {
    session: Session,
    device_id: String,
    signer: SignatureKeyPair,
    provider: OpenMlsRustCrypto,
    credential: CredentialWithKey,
    cursor: i64,
}

impl Client {
    /// Registers `session`'s identity key and one device, and uploads 5 KeyPackages.
    async fn new(server: &TestServer, session: Session) -> Self {
        let identity = SigningKey::from_bytes(&rand::random());
        let body = json!({ "public_key": B64.encode(identity.verifying_key().as_bytes()) });
        let (status, _) = server
            .call(Method::PUT, "/api/v1/keys/identity", Some(body), Some(&session.access))
            .await;
        assert_eq!(status, StatusCode::OK);
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        let message = securevox_api::routes::keys::device_signature_message(
            &session.user_id,
            signer.public(),
        );
        let body = json!({
            "signature_key": B64.encode(signer.public()),
            "identity_signature": B64.encode(identity.sign(&message).to_bytes()),
        });
        let (status, device) = server.post("/api/v1/devices", body, Some(&session.access)).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        let device_id = device["id"].as_str().unwrap().to_owned();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(
                format!("{}:{device_id}", session.user_id).into_bytes(),
            )
            .into(),
            signature_key: signer.public().into(),
        };
        let client = Self {
            session,
            device_id,
            signer,
            provider: OpenMlsRustCrypto::default(),
            credential,
            cursor: 0,
        };
        let packages: Vec<String> = (0..5).map(|_| client.key_package()).collect();
        let (status, body) = client
            .post(
                server,
                &format!("/api/v1/devices/{}/key-packages", client.device_id),
                json!({ "key_packages": packages }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        client
    }

    fn key_package(&self) -> String {
        let bundle = KeyPackage::builder()
            .build(CS, &self.provider, &self.signer, self.credential.clone())
            .unwrap();
        B64.encode(
            MlsMessageOut::from(bundle.key_package().clone()).tls_serialize_detached().unwrap(),
        )
    }

    /// A request as this device (`X-Device-Id`).
    async fn post(&self, server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
        let response = server
            .http
            .post(server.url(path))
            .bearer_auth(&self.session.access)
            .header("x-device-id", &self.device_id)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The device's new inbox items, acknowledged.
    async fn sync(&mut self, server: &TestServer) -> Vec<Value> {
        let path = format!("/api/v1/devices/{}/inbox?after={}", self.device_id, self.cursor);
        let (status, page) = server.get(&path, Some(&self.session.access)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        self.cursor = page["next_after"].as_i64().unwrap();
        let ack = format!("/api/v1/devices/{}/inbox/ack", self.device_id);
        let (status, _) =
            server.post(&ack, json!({ "up_to": self.cursor }), Some(&self.session.access)).await;
        assert_eq!(status, StatusCode::OK);
        items
    }

    /// Claims one KeyPackage of `user_id`'s (first) device and validates it as a client must.
    async fn claim_key_package(&self, server: &TestServer, user_id: &str) -> KeyPackage {
        let claim = format!("/api/v1/users/{user_id}/key-packages/claim");
        let (status, claimed) = server.post(&claim, json!({}), Some(&self.session.access)).await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        let bytes =
            B64.decode(claimed["key_packages"][0]["key_package"].as_str().unwrap()).unwrap();
        let MlsMessageBodyIn::KeyPackage(kp) =
            MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).unwrap().extract()
        else {
            panic!("not a KeyPackage")
        };
        kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).unwrap()
    }

    fn create_group(&self, conversation_id: &str) -> MlsGroup {
        MlsGroup::builder()
            .ciphersuite(CS)
            .use_ratchet_tree_extension(true)
            .with_group_id(GroupId::from_slice(conversation_id.as_bytes()))
            .build(&self.provider, &self.signer, self.credential.clone())
            .unwrap()
    }

    fn join(&self, welcome: &str) -> MlsGroup {
        let bytes = B64.decode(welcome).unwrap();
        let MlsMessageBodyIn::Welcome(welcome) =
            MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).unwrap().extract()
        else {
            panic!("not a Welcome")
        };
        let config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).build();
        StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .unwrap()
            .into_group(&self.provider)
            .unwrap()
    }

    /// Processes an inbox message in `group`: the plaintext of an application message, or
    /// `None` after merging a Commit.
    fn process(&self, group: &mut MlsGroup, data: &str) -> Option<Vec<u8>> {
        let bytes = B64.decode(data).unwrap();
        let message = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())
            .unwrap()
            .try_into_protocol_message()
            .unwrap();
        match group.process_message(&self.provider, message).unwrap().into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group.merge_staged_commit(&self.provider, *staged).unwrap();
                None
            }
            _ => panic!("unexpected content"),
        }
    }

    fn encrypt(&self, group: &mut MlsGroup, text: &[u8]) -> String {
        let message = group.create_message(&self.provider, &self.signer, text).unwrap();
        B64.encode(message.to_bytes().unwrap())
    }
}

fn to_b64(message: &MlsMessageOut) -> String {
    B64.encode(message.to_bytes().unwrap())
}

/// Alice creates a group conversation with bob and adds his device; both hold the group.
async fn group_of_two(
    server: &TestServer,
    alice: &Client,
    bob: &mut Client,
) -> (String, MlsGroup, MlsGroup) {
    let (status, conversation) = alice
        .post(
            server,
            "/api/v1/conversations",
            json!({ "kind": "group", "name": "team", "members": [bob.session.user_id] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{conversation}");
    let id = conversation["id"].as_str().unwrap().to_owned();
    assert_eq!(conversation["epoch"], 0);
    let mut alice_group = alice.create_group(&id);

    let kp = alice.claim_key_package(server, &bob.session.user_id).await;
    let (commit, welcome, _) =
        alice_group.add_members(&alice.provider, &alice.signer, &[kp]).unwrap();
    let body = json!({ "commit": to_b64(&commit), "welcome": to_b64(&welcome) });
    let (status, accepted) =
        alice.post(server, &format!("/api/v1/conversations/{id}/commits"), body).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!((accepted["seq"].as_i64(), accepted["epoch"].as_i64()), (Some(1), Some(1)));
    alice_group.merge_pending_commit(&alice.provider).unwrap();

    let items = bob.sync(server).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["kind"], "welcome");
    let bob_group = bob.join(items[0]["data"].as_str().unwrap());
    assert_eq!(
        alice_group.epoch_authenticator().as_slice(),
        bob_group.epoch_authenticator().as_slice()
    );
    (id, alice_group, bob_group)
}

async fn members_talk_through_the_delivery_service(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = Client::new(&server, server.user(&admin, "alice").await).await;
    let mut bob = Client::new(&server, server.user(&admin, "bob").await).await;
    let (id, mut alice_group, mut bob_group) = group_of_two(&server, &alice, &mut bob).await;
    let marker = format!("canary-{}", uuid::Uuid::new_v4().simple());

    // Alice writes; bob's device reads it from its inbox, in order.
    let messages = format!("/api/v1/conversations/{id}/messages");
    for n in 0..3 {
        let text = format!("{marker} hello {n}");
        let body = json!({ "message": alice.encrypt(&mut alice_group, text.as_bytes()) });
        let (status, accepted) = alice.post(&server, &messages, body).await;
        assert_eq!(status, StatusCode::CREATED, "{accepted}");
        assert_eq!(accepted["seq"], 2 + n);
    }
    let items = bob.sync(&server).await;
    let texts: Vec<String> = items
        .iter()
        .map(|i| {
            String::from_utf8(bob.process(&mut bob_group, i["data"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(texts, (0..3).map(|n| format!("{marker} hello {n}")).collect::<Vec<_>>());
    assert!(bob.sync(&server).await.is_empty(), "acknowledged items are not handed out again");

    // Bob answers.
    let body =
        json!({ "message": bob.encrypt(&mut bob_group, format!("{marker} hi alice").as_bytes()) });
    assert_eq!(bob.post(&server, &messages, body).await.0, StatusCode::CREATED);
    let mut alice = alice;
    let items = alice.sync(&server).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sender_device"], bob.device_id.as_str());
    let plain = alice.process(&mut alice_group, items[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(plain, format!("{marker} hi alice").into_bytes());

    // Refusals: no device named, a Commit sent as a message, garbage, another group's message,
    // a stranger.
    let response = server
        .http
        .post(server.url(&messages))
        .bearer_auth(&alice.session.access)
        .json(&json!({ "message": alice.encrypt(&mut alice_group, b"x") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let self_update = alice_group
        .self_update(&alice.provider, &alice.signer, LeafNodeParameters::default())
        .unwrap()
        .into_commit();
    alice_group.clear_pending_commit(alice.provider.storage()).unwrap();
    let (status, body) =
        alice.post(&server, &messages, json!({ "message": to_b64(&self_update) })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "wrong_content_type"));
    let (status, body) = alice
        .post(&server, &messages, json!({ "message": B64.encode(b"\x00\x01\x00\x02xx") }))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_mls_message"));
    let (status, other) = alice
        .post(
            &server,
            "/api/v1/conversations",
            json!({ "kind": "direct", "members": [bob.session.user_id] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let other_messages =
        format!("/api/v1/conversations/{}/messages", other["id"].as_str().unwrap());
    let body = json!({ "message": alice.encrypt(&mut alice_group, b"wrong place") });
    let (status, body) = alice.post(&server, &other_messages, body).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "wrong_group"));
    let carol = Client::new(&server, server.user(&admin, "carol").await).await;
    // A direct conversation stays between its two users.
    let other_id = other["id"].as_str().unwrap();
    let mut direct_group = alice.create_group(other_id);
    let kp = alice.claim_key_package(&server, &carol.session.user_id).await;
    let (commit, welcome, _) =
        direct_group.add_members(&alice.provider, &alice.signer, &[kp]).unwrap();
    let body = json!({ "commit": to_b64(&commit), "welcome": to_b64(&welcome) });
    let path = format!("/api/v1/conversations/{other_id}/commits");
    let (status, body) = alice.post(&server, &path, body).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "direct_conversation"));
    let body = json!({ "message": alice.encrypt(&mut alice_group, b"x") });
    let (status, _) = carol.post(&server, &messages, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stranger learns nothing of the conversation");
    let (status, _) = server
        .get(&format!("/api/v1/devices/{}/inbox", bob.device_id), Some(&carol.session.access))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nor reads another's inbox");

    // A block stops new conversations and direct messages, in both directions.
    let block = format!("/api/v1/contacts/{}/block", alice.session.user_id);
    let (status, _) = server.call(Method::PUT, &block, None, Some(&bob.session.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let direct = json!({ "kind": "direct", "members": [bob.session.user_id] });
    let (status, body) = alice.post(&server, "/api/v1/conversations", direct).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "blocked"));
    let body = json!({ "message": B64.encode(b"anything") });
    let (status, body) = alice.post(&server, &other_messages, body).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "blocked"), "direct conversation");
    let (status, _) = server.call(Method::DELETE, &block, None, Some(&bob.session.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Admins rename and change roles; members cannot; a group keeps an admin.
    let conversation = format!("/api/v1/conversations/{id}");
    let (status, body) = server
        .call(
            Method::PATCH,
            &conversation,
            Some(json!({"name": "renamed"})),
            Some(&bob.session.access),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "admins_only"));
    let demote_alice = json!({"roles": [{"user_id": alice.session.user_id, "role": "member"}]});
    let (status, body) = server
        .call(Method::PATCH, &conversation, Some(demote_alice), Some(&alice.session.access))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "last_admin"));
    let promote_bob =
        json!({"name": "renamed", "roles": [{"user_id": bob.session.user_id, "role": "admin"}]});
    let (status, body) = server
        .call(Method::PATCH, &conversation, Some(promote_bob), Some(&alice.session.access))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["members"][1]["role"], "admin");

    // Lists and details.
    let (status, list) = server.get("/api/v1/conversations", Some(&bob.session.access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, detail) =
        server.get(&format!("/api/v1/conversations/{id}"), Some(&bob.session.access)).await;
    assert_eq!(detail["devices"].as_array().unwrap().len(), 2);
    assert_eq!(detail["group_id"], B64.encode(id.as_bytes()));
    // Members come with their usernames, in the list too: clients name non-contacts.
    for view in [&detail, &list[0]] {
        let names: Vec<&str> = view["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["username"].as_str())
            .collect();
        assert_eq!(names.len(), view["members"].as_array().unwrap().len(), "{view}");
    }

    // The server holds no plaintext: the marker is nowhere in the SQLite file and its WAL.
    // (Positive control: the conversation's name, which the server does keep, is found.)
    if server.db.url.starts_with("sqlite") {
        let contains =
            |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        let mut name_seen = false;
        for entry in std::fs::read_dir(server.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                name_seen |= contains(&bytes, b"team");
                assert!(
                    !contains(&bytes, marker.as_bytes()),
                    "{} holds the plaintext marker",
                    path.display()
                );
            }
        }
        assert!(name_seen, "the scan read the database");
    }
    server.stop().await;
}

async fn one_commit_wins_each_epoch(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut alice = Client::new(&server, server.user(&admin, "alice").await).await;
    let mut bob = Client::new(&server, server.user(&admin, "bob").await).await;
    let (id, mut alice_group, mut bob_group) = group_of_two(&server, &alice, &mut bob).await;
    let commits = format!("/api/v1/conversations/{id}/commits");

    // Both update their keys in epoch 1, at once.
    let a = alice_group
        .self_update(&alice.provider, &alice.signer, LeafNodeParameters::default())
        .unwrap()
        .into_commit();
    let b = bob_group
        .self_update(&bob.provider, &bob.signer, LeafNodeParameters::default())
        .unwrap()
        .into_commit();
    let (ra, rb) = tokio::join!(
        alice.post(&server, &commits, json!({ "commit": to_b64(&a) })),
        bob.post(&server, &commits, json!({ "commit": to_b64(&b) })),
    );
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{ra:?} {rb:?}");
    let (winner_is_alice, loser_body) =
        if ra.0 == StatusCode::OK { (true, rb.1) } else { (false, ra.1) };
    assert_eq!(
        (code(&loser_body), loser_body["error"]["details"]["current_epoch"].as_i64()),
        ("stale_epoch", Some(2))
    );

    // The winner merges; the loser drops its Commit and applies the winner's from its inbox.
    let (winner, winner_group, loser, loser_group) = if winner_is_alice {
        (&mut alice, &mut alice_group, &mut bob, &mut bob_group)
    } else {
        (&mut bob, &mut bob_group, &mut alice, &mut alice_group)
    };
    winner_group.merge_pending_commit(&winner.provider).unwrap();
    loser_group.clear_pending_commit(loser.provider.storage()).unwrap();
    let items = loser.sync(&server).await;
    let commit_item = items.iter().find(|i| i["content_type"] == "commit").unwrap();
    assert!(loser.process(loser_group, commit_item["data"].as_str().unwrap()).is_none());
    assert_eq!(winner_group.epoch().as_u64(), 2);
    assert_eq!(
        winner_group.epoch_authenticator().as_slice(),
        loser_group.epoch_authenticator().as_slice(),
        "converged"
    );

    // A message still made at epoch 1 is refused; the loser, rebased, is heard.
    let (status, detail) =
        server.get(&format!("/api/v1/conversations/{id}"), Some(&loser.session.access)).await;
    assert_eq!((status, detail["epoch"].as_i64()), (StatusCode::OK, Some(2)));
    let stale = loser
        .post(&server, &commits, json!({ "commit": to_b64(&if winner_is_alice { b } else { a }) }))
        .await;
    assert_eq!((stale.0, code(&stale.1)), (StatusCode::CONFLICT, "stale_epoch"));
    let messages = format!("/api/v1/conversations/{id}/messages");
    let body = json!({ "message": loser.encrypt(loser_group, b"rebased") });
    assert_eq!(loser.post(&server, &messages, body).await.0, StatusCode::CREATED);
    let items = winner.sync(&server).await;
    let last = items.last().unwrap();
    assert_eq!(winner.process(winner_group, last["data"].as_str().unwrap()).unwrap(), b"rebased");
    server.stop().await;
}

async fn attachments_are_opaque_and_for_members_only(backend: Backend) {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    let server = TestServer::start_with(backend, |c| {
        c.attachments.max_bytes = 32 * 1024;
        c.retention.messages_days = 0;
    })
    .await;
    let admin = server.admin().await;
    let alice = Client::new(&server, server.user(&admin, "alice").await).await;
    let mut bob = Client::new(&server, server.user(&admin, "bob").await).await;
    let carol = server.user(&admin, "carol").await;
    let (id, mut alice_group, mut bob_group) = group_of_two(&server, &alice, &mut bob).await;
    let marker = format!("canary-{}", uuid::Uuid::new_v4().simple());

    // Alice encrypts a file with a fresh key, uploads the ciphertext, and sends the key and
    // the file's name inside an MLS message.
    let file: Vec<u8> = marker.as_bytes().iter().copied().cycle().take(20_000).collect();
    let key: [u8; 32] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let sealed = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt(Nonce::from_slice(&nonce), file.as_slice())
        .unwrap();
    let upload = |body: Vec<u8>, token: String, conversation: String| {
        let request = server
            .http
            .post(server.url(&format!("/api/v1/conversations/{conversation}/attachments")));
        async move {
            let response = request
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, attachment) =
        upload(sealed.clone(), alice.session.access.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{attachment}");
    assert_eq!(attachment["size"], sealed.len());
    let attachment_id = attachment["id"].as_str().unwrap().to_owned();
    let pointer = json!({
        "attachment": attachment_id, "key": B64.encode(key), "nonce": B64.encode(nonce),
        "name": format!("{marker}.jpg"), "type": "image/jpeg",
    });
    let body =
        json!({ "message": alice.encrypt(&mut alice_group, pointer.to_string().as_bytes()) });
    let messages = format!("/api/v1/conversations/{id}/messages");
    assert_eq!(alice.post(&server, &messages, body).await.0, StatusCode::CREATED);

    // Bob reads the pointer, fetches the blob and opens it.
    let items = bob.sync(&server).await;
    let pointer: Value = serde_json::from_slice(
        &bob.process(&mut bob_group, items[0]["data"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let path = format!("/api/v1/attachments/{}", pointer["attachment"].as_str().unwrap());
    let response =
        server.http.get(server.url(&path)).bearer_auth(&bob.session.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    let fetched = response.bytes().await.unwrap();
    let key = B64.decode(pointer["key"].as_str().unwrap()).unwrap();
    let nonce = B64.decode(pointer["nonce"].as_str().unwrap()).unwrap();
    let opened = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .decrypt(Nonce::from_slice(&nonce), fetched.as_ref())
        .unwrap();
    assert_eq!(opened, file);

    // Only members download; limits and empty uploads are refused.
    let (status, _) = server.get(&path, Some(&carol.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stranger gets nothing");
    let (status, _) = upload(vec![1; 10], carol.access.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nor uploads to the conversation");
    let (status, body) = upload(vec![1; 40_000], alice.session.access.clone(), id.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "attachment_too_large"));
    // The limit is published, so that clients refuse a large file before uploading it.
    let (status, limits) = server.get("/api/v1/attachments/limits", Some(&carol.access)).await;
    assert_eq!((status, limits["max_bytes"].as_u64()), (StatusCode::OK, Some(32 * 1024)));
    let (status, _) = server.get("/api/v1/attachments/limits", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = upload(Vec::new(), alice.session.access.clone(), id.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "empty_attachment"));

    // Nothing readable on the server's disk: not the file, not its name (SQLite and blobs).
    if server.db.url.starts_with("sqlite") {
        let mut files = vec![server.dir.path().to_path_buf()];
        let mut scanned = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{} holds the marker",
                    path.display()
                );
                scanned += 1;
            }
        }
        assert!(scanned >= 2, "the database and the blob were scanned");
    }

    // After the retention window the clean-up deletes the blob.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let store = securevox_store::Store::connect(&server.db.url).await.unwrap();
    let report = securevox_api::maintenance::cleanup(&store, &server.config).await.unwrap();
    assert_eq!(report.attachments_removed, 1);
    store.close().await;
    let (status, _) = server.get(&path, Some(&bob.session.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// A log writer into a shared buffer.
struct Sink(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Everything written by this test binary's tracing (the in-process server logs at debug).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Sink(logs))
            .try_init();
        logs
    })
}

/// A TCP relay in front of the server that keeps every byte both ways: what an observer of
/// the connection (or a TLS-terminating proxy) sees.
async fn recording_proxy(
    target: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tape = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = tape.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(target).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut from, mut to, tape) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                    tape.clone(),
                ),
                (Box::new(sr), Box::new(cw), tape.clone()),
            ] {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf).await {
                        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        tape.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown().await;
                });
            }
        }
    });
    (format!("http://{addr}"), recorded)
}

/// The forms a marker could leak in: as text, as hex, and as base64 at each alignment.
fn leak_forms(marker: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![marker.to_vec(), hex(marker).into_bytes()];
    for k in 0..3 {
        let full = B64.encode([vec![0u8; k], marker.to_vec()].concat());
        let (start, end) = (k.div_ceil(3) * 4, (k + marker.len()) / 3 * 4);
        forms.push(full.as_bytes()[start..end].to_vec());
    }
    forms
}

fn assert_no_leak(what: &str, haystack: &[u8], forms: &[Vec<u8>]) {
    for form in forms {
        assert!(
            !haystack.windows(form.len()).any(|w| w == form.as_slice()),
            "{what} holds the plaintext marker as {:?}",
            String::from_utf8_lossy(form)
        );
    }
}

async fn no_plaintext_in_storage_logs_or_traffic(backend: Backend) {
    let logs = captured_logs();
    let mut server = TestServer::start(backend).await;
    let (proxy, tape) = recording_proxy(server.addr).await;
    server.base = proxy;
    let admin = server.admin().await;
    let alice = Client::new(&server, server.user(&admin, "alice").await).await;
    let mut bob = Client::new(&server, server.user(&admin, "bob").await).await;
    let (id, mut alice_group, mut bob_group) = group_of_two(&server, &alice, &mut bob).await;
    let marker = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let forms = leak_forms(marker.as_bytes());

    let messages = format!("/api/v1/conversations/{id}/messages");
    for text in [format!("{marker} one"), format!("two {marker}")] {
        let body = json!({ "message": alice.encrypt(&mut alice_group, text.as_bytes()) });
        assert_eq!(alice.post(&server, &messages, body).await.0, StatusCode::CREATED);
    }
    let items = bob.sync(&server).await;
    for item in &items {
        let plain = bob.process(&mut bob_group, item["data"].as_str().unwrap()).unwrap();
        assert!(String::from_utf8(plain).unwrap().contains(&marker), "bob reads the marker");
    }
    let body = json!({ "message": bob.encrypt(&mut bob_group, marker.as_bytes()) });
    assert_eq!(bob.post(&server, &messages, body).await.0, StatusCode::CREATED);

    // The wire: every request and response, headers and bodies.
    let traffic = tape.lock().unwrap().clone();
    assert!(traffic.windows(b"team".len()).any(|w| w == b"team"), "the tape recorded the traffic");
    assert_no_leak("the traffic", &traffic, &forms);
    // The server's logs (debug level, this whole test binary).
    let logged = logs.lock().unwrap().clone();
    assert!(!logged.is_empty(), "the server logged");
    assert_no_leak("the logs", &logged, &forms);
    // The database: the SQLite files (with the WAL), or a PostgreSQL dump; and the data directory.
    let mut stored = Vec::new();
    let mut paths = vec![server.dir.path().to_path_buf()];
    while let Some(path) = paths.pop() {
        if path.is_dir() {
            paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    if server.db.url.starts_with("postgres") {
        let dump = std::process::Command::new("pg_dump")
            .arg(&server.db.url)
            .output()
            .expect("pg_dump runs");
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        stored.extend(dump.stdout);
    }
    assert!(stored.windows(b"team".len()).any(|w| w == b"team"), "the database was read");
    assert_no_leak("the stored data", &stored, &forms);
    server.stop().await;
}

#[test]
fn leak_forms_catch_the_marker_in_every_encoding() {
    let marker = b"canary-0123456789abcdef0123456789abcdef";
    let forms = leak_forms(marker);
    let mut encodings = vec![marker.to_vec(), hex(marker).into_bytes()];
    for prefix in ["", "x", "xy", "xyz"] {
        encodings.push(B64.encode([prefix.as_bytes(), marker].concat()).into_bytes());
    }
    for encoded in encodings {
        let caught = std::panic::catch_unwind(|| assert_no_leak("t", &encoded, &forms)).is_err();
        assert!(caught, "{:?} went unnoticed", String::from_utf8_lossy(&encoded));
    }
}
