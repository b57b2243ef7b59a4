//! The key directory over real HTTP, with KeyPackages made by a real MLS client (openmls):
//! identity keys, devices vouched for by them, KeyPackage upload checks, and claims that hand
//! each KeyPackage out once.

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
    devices_are_vouched_for_by_the_identity_key,
    key_packages_are_checked_and_claimed_once,
    device_links_take_a_valid_identity_signature
);

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// What a client device holds: its MLS signer and crypto provider.
struct Device {
    id: String,
    signer: SignatureKeyPair,
    provider: OpenMlsRustCrypto,
}

fn identity_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random())
}

fn device_message(user_id: &str, signature_key: &[u8]) -> Vec<u8> {
    securevox_api::routes::keys::device_signature_message(user_id, signature_key)
}

async fn publish_identity(server: &TestServer, session: &Session, key: &SigningKey) -> Value {
    let body = json!({ "public_key": B64.encode(key.verifying_key().as_bytes()) });
    let (status, body) =
        server.call(Method::PUT, "/api/v1/keys/identity", Some(body), Some(&session.access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn register_device(server: &TestServer, session: &Session, identity: &SigningKey) -> Device {
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    let signature = identity.sign(&device_message(&session.user_id, signer.public()));
    let body = json!({
        "name": "laptop",
        "signature_key": B64.encode(signer.public()),
        "identity_signature": B64.encode(signature.to_bytes()),
    });
    let (status, body) = server.post("/api/v1/devices", body, Some(&session.access)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["credential_identity"],
        format!("{}:{}", session.user_id, body["id"].as_str().unwrap())
    );
    Device {
        id: body["id"].as_str().unwrap().to_owned(),
        signer,
        provider: OpenMlsRustCrypto::default(),
    }
}

/// A KeyPackage of `device` (as an MLSMessage) naming `identity`, last-resort or not.
fn key_package(device: &Device, identity: &str, last_resort: bool) -> String {
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
        signature_key: device.signer.public().into(),
    };
    let mut builder = KeyPackage::builder();
    if last_resort {
        builder = builder
            .leaf_node_capabilities(
                Capabilities::builder().extensions(vec![ExtensionType::LastResort]).build(),
            )
            .mark_as_last_resort();
    }
    let bundle = builder.build(CS, &device.provider, &device.signer, credential).unwrap();
    let message = MlsMessageOut::from(bundle.key_package().clone());
    B64.encode(message.tls_serialize_detached().unwrap())
}

async fn devices_are_vouched_for_by_the_identity_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice").await;
    let identity = identity_key();

    // No device before an identity key.
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    let signature = identity.sign(&device_message(&alice.user_id, signer.public()));
    let request = json!({
        "signature_key": B64.encode(signer.public()),
        "identity_signature": B64.encode(signature.to_bytes()),
    });
    let (status, body) = server.post("/api/v1/devices", request.clone(), Some(&alice.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "no_identity_key"));

    assert_eq!(publish_identity(&server, &alice, &identity).await["replaced"], false);
    let (status, body) = server.post("/api/v1/devices", request.clone(), Some(&alice.access)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let laptop = body["id"].as_str().unwrap().to_owned();
    let (status, body) = server.post("/api/v1/devices", request, Some(&alice.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "signature_key_taken"));

    // Bob cannot attach a device with alice's signature over his key, nor one signed by a
    // key that is not his identity key.
    let bob = server.user(&admin, "bob").await;
    let bob_identity = identity_key();
    publish_identity(&server, &bob, &bob_identity).await;
    let other = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    for (signing, for_user) in [(&identity, &bob.user_id), (&bob_identity, &alice.user_id)] {
        let signature = signing.sign(&device_message(for_user, other.public()));
        let request = json!({
            "signature_key": B64.encode(other.public()),
            "identity_signature": B64.encode(signature.to_bytes()),
        });
        let (status, body) = server.post("/api/v1/devices", request, Some(&bob.access)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "bad_identity_signature"));
    }
    // Bad input gets clear errors.
    for (request, expected) in [
        (json!({"public_key": "not base64!"}), "invalid_encoding"),
        (json!({"public_key": B64.encode([1u8; 31])}), "invalid_key"),
    ] {
        let (status, body) = server
            .call(Method::PUT, "/api/v1/keys/identity", Some(request), Some(&bob.access))
            .await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, expected));
    }
    let (status, _) = server.get("/api/v1/devices", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Anyone signed in reads a user's keys, to verify them.
    let (status, keys) =
        server.get(&format!("/api/v1/users/{}/keys", alice.user_id), Some(&bob.access)).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["identity_key"], B64.encode(identity.verifying_key().as_bytes()));
    assert_eq!(keys["devices"].as_array().unwrap().len(), 1);
    let device = &keys["devices"][0];
    let signature = B64.decode(device["identity_signature"].as_str().unwrap()).unwrap();
    let vouched = device_message(
        &alice.user_id,
        &B64.decode(device["signature_key"].as_str().unwrap()).unwrap(),
    );
    identity
        .verifying_key()
        .verify_strict(&vouched, &ed25519_dalek::Signature::from_slice(&signature).unwrap())
        .expect("a client can verify the device itself");

    // Only the owner removes a device; someone else's looks like no device at all.
    let path = format!("/api/v1/devices/{laptop}");
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.call(Method::DELETE, &path, None, Some(&alice.access)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, mine) = server.get("/api/v1/devices", Some(&alice.access)).await;
    assert_eq!(mine, json!([]));

    // A new identity key removes the devices the old one signed.
    register_device(&server, &alice, &identity).await;
    assert_eq!(publish_identity(&server, &alice, &identity_key()).await["replaced"], true);
    let (_, mine) = server.get("/api/v1/devices", Some(&alice.access)).await;
    assert_eq!(mine, json!([]));
    server.stop().await;
}

async fn key_packages_are_checked_and_claimed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice").await;
    let bob = server.user(&admin, "bob").await;
    let identity = identity_key();
    publish_identity(&server, &alice, &identity).await;
    let laptop = register_device(&server, &alice, &identity).await;
    let phone = register_device(&server, &alice, &identity).await;
    let me = |d: &Device| format!("{}:{}", alice.user_id, d.id);
    let upload = |device: &Device| format!("/api/v1/devices/{}/key-packages", device.id);

    let batch: Vec<String> = (0..3).map(|_| key_package(&laptop, &me(&laptop), false)).collect();
    let body =
        json!({ "key_packages": batch, "last_resort": key_package(&laptop, &me(&laptop), true) });
    let (status, body) = server.post(&upload(&laptop), body, Some(&alice.access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["available"].as_u64(), body["has_last_resort"].as_bool()),
        (Some(3), Some(true))
    );
    assert_eq!(body["low"], true, "3 is below the watermark");

    // Refused: the phone's key with the laptop's credential, the laptop's key with the
    // phone's credential, a last-resort one among the regular ones, bytes that are not a
    // KeyPackage, text that is not base64; and someone else's device.
    let refusals = [
        (
            json!({ "key_packages": [key_package(&phone, &me(&laptop), false)] }),
            "invalid_key_package",
        ),
        (
            json!({ "key_packages": [key_package(&laptop, &me(&phone), false)] }),
            "invalid_key_package",
        ),
        (
            json!({ "key_packages": [key_package(&phone, &me(&phone), true)] }),
            "invalid_key_package",
        ),
        (
            json!({ "key_packages": [B64.encode(b"\x00\x01\x00\x05garbage")] }),
            "invalid_key_package",
        ),
        (json!({ "key_packages": ["***"] }), "invalid_encoding"),
    ];
    for (n, (body, expected)) in refusals.into_iter().enumerate() {
        let (status, answer) = server.post(&upload(&phone), body, Some(&alice.access)).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, expected),
            "refusal {n}: {answer}"
        );
    }
    let good = json!({ "key_packages": [key_package(&phone, &me(&phone), false)] });
    let (status, _) = server.post(&upload(&phone), good, Some(&bob.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob uploads for alice's device");
    let (_, status_body) = server.get(&upload(&phone), Some(&alice.access)).await;
    assert_eq!(status_body["available"], 0, "nothing of the refused uploads was kept");

    // Bob claims: one per device; the laptop's three, then its last-resort one; the phone has none.
    let claim = format!("/api/v1/users/{}/key-packages/claim", alice.user_id);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..5 {
        let (status, body) = server.post(&claim, json!({}), Some(&bob.access)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let packages = body["key_packages"].as_array().unwrap();
        assert_eq!(packages.len(), 1, "only the laptop has KeyPackages");
        assert_eq!(packages[0]["device_id"], laptop.id.as_str());
        let last_resort = packages[0]["last_resort"].as_bool().unwrap();
        assert_eq!(last_resort, round >= 3, "round {round}");
        let bytes = B64.decode(packages[0]["key_package"].as_str().unwrap()).unwrap();
        if !last_resort {
            assert!(seen.insert(bytes.clone()), "a KeyPackage was handed out twice");
        }
        // What comes back is a KeyPackage an MLS client accepts.
        let MlsMessageBodyIn::KeyPackage(kp) =
            MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).unwrap().extract()
        else {
            panic!("not a KeyPackage");
        };
        kp.validate(laptop.provider.crypto(), ProtocolVersion::Mls10).unwrap();
    }
    let (_, status_body) = server.get(&upload(&laptop), Some(&alice.access)).await;
    assert_eq!(
        (status_body["available"].as_u64(), status_body["has_last_resort"].as_bool()),
        (Some(0), Some(true))
    );
    // Six claims at once over HTTP against the phone's four KeyPackages: four get one each,
    // never the same, and two get the last-resort one.
    let batch: Vec<String> = (0..4).map(|_| key_package(&phone, &me(&phone), false)).collect();
    let body =
        json!({ "key_packages": batch, "last_resort": key_package(&phone, &me(&phone), true) });
    let (status, body) = server.post(&upload(&phone), body, Some(&alice.access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let once = || server.post(&claim, json!({}), Some(&bob.access));
    let answers = tokio::join!(once(), once(), once(), once(), once(), once());
    let answers = [answers.0, answers.1, answers.2, answers.3, answers.4, answers.5];
    let mut regular = std::collections::BTreeSet::new();
    let mut last_resort = 0;
    for (status, body) in answers {
        assert_eq!(status, StatusCode::OK, "{body}");
        let phones: Vec<&Value> = body["key_packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["device_id"] == phone.id.as_str())
            .collect();
        assert_eq!(phones.len(), 1, "{body}");
        if phones[0]["last_resort"] == true {
            last_resort += 1;
        } else {
            assert!(regular.insert(phones[0]["key_package"].to_string()), "handed out twice");
        }
    }
    assert_eq!((regular.len(), last_resort), (4, 2));

    let (status, _) = server
        .post(
            "/api/v1/users/00000000-0000-0000-0000-000000000000/key-packages/claim",
            json!({}),
            Some(&bob.access),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn device_links_take_a_valid_identity_signature(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice").await;
    let mallory = server.user(&admin, "mallory").await;
    let identity = identity_key();
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    let request = json!({
        "name": "phone",
        "signature_key": B64.encode(signer.public()),
        "transfer_key": B64.encode([7u8; 32]),
    });
    let post = |path: &str, body: Value, who: &Session| {
        let (server, token, path) = (&server, who.access.clone(), path.to_owned());
        async move { server.post(&path, body, Some(&token)).await }
    };

    // Nothing to link to before the account has an identity; bad keys are refused.
    let (status, body) = post("/api/v1/devices/links", request.clone(), &alice).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "no_identity_key"));
    publish_identity(&server, &alice, &identity).await;
    let mut short = request.clone();
    short["transfer_key"] = json!(B64.encode([7u8; 16]));
    let (status, body) = post("/api/v1/devices/links", short, &alice).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_key"));

    let (status, link) = post("/api/v1/devices/links", request.clone(), &alice).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["state"], "pending");
    let id = link["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/devices/links/{id}/approve");

    // Only the identity key's signature over this key approves; only alice sees the request.
    let (status, body) =
        server.get(&format!("/api/v1/devices/links/{id}"), Some(&mallory.access)).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let forged = identity_key().sign(&device_message(&alice.user_id, signer.public()));
    let (status, body) =
        post(&approve, json!({ "identity_signature": B64.encode(forged.to_bytes()) }), &alice)
            .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "bad_identity_signature"));
    let signature = identity.sign(&device_message(&alice.user_id, signer.public()));
    let approval = B64.encode(signature.to_bytes());
    let (status, body) = post(
        &approve,
        json!({ "identity_signature": approval, "envelope": B64.encode(vec![0u8; 17_000]) }),
        &alice,
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "envelope_too_large"));
    let (status, body) = post(&approve, json!({ "identity_signature": approval }), &mallory).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "not mallory's");
    let (status, device) = post(
        &approve,
        json!({ "identity_signature": approval, "envelope": B64.encode(b"sealed") }),
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    assert_eq!(device["signature_key"], request["signature_key"]);
    let (status, body) = post(&approve, json!({ "identity_signature": approval }), &alice).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "answered once");

    let (status, body) =
        server.get(&format!("/api/v1/devices/links/{id}"), Some(&alice.access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["device"]["id"].as_str()),
        (Some("approved"), device["id"].as_str())
    );
    assert_eq!(body["envelope"], B64.encode(b"sealed"));
    let (status, _) = server
        .call(Method::DELETE, &format!("/api/v1/devices/links/{id}"), None, Some(&alice.access))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&format!("/api/v1/devices/links/{id}"), Some(&alice.access)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "forgotten, envelope and all");

    // At most five requests wait at once.
    for n in 0..5u8 {
        let mut more = request.clone();
        more["transfer_key"] = json!(B64.encode([n; 32]));
        let (status, body) = post("/api/v1/devices/links", more, &alice).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = post("/api/v1/devices/links", request, &alice).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_link_requests"));
    let (status, body) = server.get("/api/v1/devices/links", Some(&alice.access)).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (StatusCode::OK, Some(5)));
}
