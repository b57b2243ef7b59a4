//! Server-side inspection of MLS (RFC 9420) objects for the `SecureVox`
//! Delivery Service.
//!
//! # Why this crate exists
//!
//! The `SecureVox` server is the MLS *Delivery Service* (DS): it never holds
//! private keys or group state and never sees plaintext, but it still has to
//! route, fence and validate what clients upload. Everything it needs for
//! that is in the *public* parts of MLS objects:
//!
//! * a **`KeyPackage`** must be checked before it is published for others to
//!   fetch (ciphersuite, self-signature, lifetime, Basic credential whose
//!   identity is `"user_id:device_id"`), and it is addressed by its
//!   `KeyPackageRef`;
//! * a **handshake or application message** (`PublicMessage` /
//!   `PrivateMessage`) carries its group id, epoch and content type in clear,
//!   which lets the DS route it and enforce "one Commit per epoch";
//! * a **Welcome** names the `KeyPackageRef` of each new member, which tells
//!   the DS whom to deliver it to;
//! * a **`GroupInfo`** (for external joins) names its group and epoch.
//!
//! This crate exposes exactly that as pure functions over bytes. Parsing and
//! signature verification are delegated to `openmls` itself (`MlsMessageIn`,
//! `KeyPackageIn::validate`, `ProtocolMessage`, `Welcome`,
//! `VerifiableGroupInfo`) with `openmls_rust_crypto` as the crypto backend,
//! so the server accepts exactly what an `openmls` client would accept and
//! never maintains a second TLS decoder.
//!
//! The only hand-read bytes are fixed-offset `u16` header fields (protocol
//! version, wire format, ciphersuite) that are peeked *before* the full parse.
//! `openmls` refuses to decode unknown wire formats and ciphersuites at all,
//! so without the peek a `KeyPackage` for ciphersuite `0x0004` or a draft
//! wire format would surface as an opaque decode error instead of
//! [`InspectError::WrongCiphersuite`] / [`InspectError::UnknownWireFormat`],
//! and a wrong-ciphersuite `KeyPackage` would otherwise have its signature
//! checked (or fail it) before its ciphersuite is even looked at.
//!
//! # What is *not* checked (it cannot be, without group state)
//!
//! * Message signatures, membership tags and the sender of a
//!   `PrivateMessage`: they need the group's tree and key schedule.
//! * The `GroupInfo` signature: it is made by a group member whose key is
//!   only known from the ratchet tree. Joiners verify it.
//! * The ciphersuite of a `PublicMessage` / `PrivateMessage`: it is not on the
//!   wire; it is fixed per group by the `GroupInfo`/`Welcome` that created it.

use std::sync::LazyLock;

use openmls::prelude::{
    tls_codec::{self, Deserialize},
    BasicCredential, CredentialType, KeyPackage, KeyPackageIn, KeyPackageVerifyError,
    MlsMessageBodyIn, MlsMessageIn, ProtocolMessage, ProtocolVersion,
};
use openmls::treesync::errors::LifetimeError;
use openmls_rust_crypto::RustCrypto;

/// The only ciphersuite `SecureVox` accepts:
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`.
pub const CIPHERSUITE: u16 = 0x0001;

/// MLS 1.0, the only protocol version defined by RFC 9420.
const PROTOCOL_VERSION_MLS10: u16 = 0x0001;

/// `openmls`'s crypto provider; only used for hashing and signature
/// verification here. Built once: `RustCrypto::default()` seeds a CSPRNG from
/// the OS, which would be wasted work on every call.
static CRYPTO: LazyLock<RustCrypto> = LazyLock::new(RustCrypto::default);

/// Why an uploaded MLS object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The bytes do not decode as the expected MLS structure (this includes
    /// truncated input and invalid field values).
    #[error("malformed MLS object: {0}")]
    Malformed(String),
    /// The object decoded, but bytes were left over after it.
    #[error("trailing bytes after the MLS object")]
    TrailingBytes,
    /// `MLSMessage.version` (or `KeyPackage.version`) is not MLS 1.0.
    #[error("unsupported MLS protocol version {0:#06x} (only 0x0001, mls10, is accepted)")]
    UnsupportedVersion(u16),
    /// The wire format value is not one defined by RFC 9420.
    #[error("unknown MLS wire format {0:#06x}")]
    UnknownWireFormat(u16),
    /// A valid MLS message, but of the wrong kind for this call.
    #[error(
        "wrong MLS wire format: expected {}, found {found:?}",
        expected_list(.expected)
    )]
    WrongWireFormat {
        /// The wire formats this call accepts.
        expected: &'static [WireFormat],
        /// The wire format that was uploaded.
        found: WireFormat,
    },
    /// The object is for a ciphersuite other than [`CIPHERSUITE`].
    #[error("ciphersuite {0:#06x} is not accepted (only {CIPHERSUITE:#06x} is)")]
    WrongCiphersuite(u16),
    /// The `KeyPackage` or its leaf node is not signed by the leaf's own
    /// signature key.
    #[error("KeyPackage signature does not verify under its leaf signature key")]
    BadSignature,
    /// The `KeyPackage` lifetime ended at or before `now`.
    #[error("KeyPackage expired: not_after={not_after}, now={now}")]
    Expired {
        /// `Lifetime.not_after` of the leaf node (Unix seconds).
        not_after: u64,
        /// The time it was checked against (Unix seconds).
        now: u64,
    },
    /// The `KeyPackage` lifetime starts after `now`.
    #[error("KeyPackage not valid yet: not_before={not_before}, now={now}")]
    NotYetValid {
        /// `Lifetime.not_before` of the leaf node (Unix seconds).
        not_before: u64,
        /// The time it was checked against (Unix seconds).
        now: u64,
    },
    /// The leaf credential is not a `BasicCredential`; carries the
    /// credential type code point.
    #[error("credential type {0:#06x} is not accepted (only basic, 0x0001, is)")]
    NotBasicCredential(u16),
    /// Any other RFC 9420 `KeyPackage` validity rule that `openmls` enforces
    /// (init key equal to encryption key, extension not listed in the leaf's
    /// capabilities, missing lifetime, ...).
    #[error("invalid KeyPackage: {0}")]
    InvalidKeyPackage(String),
}

fn expected_list(expected: &[WireFormat]) -> String {
    expected.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" or ")
}

/// `MLSMessage.wire_format` (RFC 9420 §6); the discriminants are the wire
/// values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum WireFormat {
    /// `mls_public_message`: signed, unencrypted handshake message.
    PublicMessage = 1,
    /// `mls_private_message`: encrypted application or handshake message.
    PrivateMessage = 2,
    /// `mls_welcome`.
    Welcome = 3,
    /// `mls_group_info`.
    GroupInfo = 4,
    /// `mls_key_package`.
    KeyPackage = 5,
}

impl WireFormat {
    fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::PublicMessage,
            2 => Self::PrivateMessage,
            3 => Self::Welcome,
            4 => Self::GroupInfo,
            5 => Self::KeyPackage,
            _ => return None,
        })
    }
}

/// `FramedContent.content_type` (RFC 9420 §6), readable in clear on both
/// `PublicMessage` and `PrivateMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// An application message.
    Application,
    /// A standalone proposal.
    Proposal,
    /// A Commit; the DS must accept at most one per group epoch.
    Commit,
}

impl From<openmls::prelude::ContentType> for ContentType {
    fn from(value: openmls::prelude::ContentType) -> Self {
        use openmls::prelude::ContentType as C;
        match value {
            C::Application => Self::Application,
            C::Proposal => Self::Proposal,
            C::Commit => Self::Commit,
        }
    }
}

/// The public, verified facts about an uploaded `KeyPackage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackageInfo {
    /// `BasicCredential` identity bytes (`SecureVox` clients use
    /// `"user_id:device_id"`; this crate does not interpret them).
    pub identity: Vec<u8>,
    /// The leaf's signature public key (raw Ed25519, 32 bytes).
    pub signature_key: Vec<u8>,
    /// Whether the `KeyPackage` carries the `last_resort` extension (RFC 9420
    /// §17.3, type `0x000a`), i.e. may be handed out more than once.
    pub last_resort: bool,
    /// The `KeyPackageRef` (`RefHash("MLS 1.0 KeyPackage Reference", kp)`),
    /// which is what a Welcome names new members by.
    pub reference: Vec<u8>,
    /// `Lifetime.not_after` of the leaf node (Unix seconds).
    pub not_after: u64,
}

/// Routing header of a `PublicMessage` or `PrivateMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// [`WireFormat::PublicMessage`] or [`WireFormat::PrivateMessage`].
    pub wire_format: WireFormat,
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// The epoch the message was sent in; for a Commit this is the epoch it
    /// moves the group *out of*.
    pub epoch: u64,
    /// Application, Proposal or Commit.
    pub content_type: ContentType,
    /// Sent by a new member joining with an external Commit (a `PublicMessage` whose sender
    /// is `new_member_commit`), not by a member of the group.
    pub new_member_commit: bool,
}

/// Public facts about a Welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeInfo {
    /// The `KeyPackageRef` of each new member (one per
    /// `EncryptedGroupSecrets`), in message order.
    pub new_member_refs: Vec<Vec<u8>>,
}

/// Public facts about a `GroupInfo` (unverified: see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoHeader {
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// The epoch the `GroupInfo` describes.
    pub epoch: u64,
}

/// Validates an uploaded `KeyPackage` and returns its public facts.
///
/// Accepts both an `MLSMessage` with wire format `mls_key_package` (what
/// `ts-mls` `encodeMlsMessage` and `openmls` `MlsMessageOut::from(kp)`
/// produce, and what RFC 9420 prescribes on the wire) and a bare
/// `KeyPackage` (what `openmls` `KeyPackage::tls_serialize_detached`
/// produces).
///
/// Checks, in order: the whole input decodes with no trailing bytes;
/// protocol version mls10; ciphersuite [`CIPHERSUITE`]; the leaf node and
/// `KeyPackage` signatures under the leaf's own signature key plus the other
/// RFC 9420 rules `openmls` enforces; the lifetime covers `now_unix`; the
/// credential is Basic.
///
/// Note that `openmls`'s `KeyPackageIn::validate` also checks the lifetime
/// against the *system clock*, so a `KeyPackage` outside its lifetime by the
/// wall clock is refused whatever `now_unix` says. In production pass the
/// current time; `now_unix` makes the check explicit and testable.
///
/// # Errors
///
/// Any [`InspectError`] describing the first failed check.
pub fn inspect_key_package(bytes: &[u8], now_unix: u64) -> Result<KeyPackageInfo, InspectError> {
    let key_package_in = decode_key_package(bytes)?;
    let key_package =
        key_package_in.validate(&*CRYPTO, ProtocolVersion::Mls10).map_err(map_verify_error)?;
    key_package_info(&key_package, now_unix)
}

/// Reads the routing header of a `PublicMessage` or `PrivateMessage`.
///
/// # Errors
///
/// [`InspectError::WrongWireFormat`] for any other kind of `MLSMessage`;
/// [`InspectError::UnsupportedVersion`], [`InspectError::TrailingBytes`] or
/// [`InspectError::Malformed`] if it does not decode exactly.
pub fn inspect_message(bytes: &[u8]) -> Result<MessageHeader, InspectError> {
    const EXPECTED: &[WireFormat] = &[WireFormat::PublicMessage, WireFormat::PrivateMessage];
    let wire_format = peek_mls_message(bytes, EXPECTED)?;
    let message: ProtocolMessage = decode_mls_message(bytes)?
        .try_into_protocol_message()
        .map_err(|e| InspectError::Malformed(e.to_string()))?;
    let new_member_commit = matches!(
        &message,
        ProtocolMessage::PublicMessage(m) if matches!(m.sender(), openmls::prelude::Sender::NewMemberCommit)
    );
    Ok(MessageHeader {
        wire_format,
        new_member_commit,
        group_id: message.group_id().as_slice().to_vec(),
        epoch: message.epoch().as_u64(),
        content_type: message.content_type().into(),
    })
}

/// Lists the `KeyPackageRef`s a Welcome is addressed to.
///
/// # Errors
///
/// [`InspectError::WrongWireFormat`] if it is not an `mls_welcome`
/// `MLSMessage`, [`InspectError::WrongCiphersuite`] if it is not for
/// [`CIPHERSUITE`], or a decoding error.
pub fn inspect_welcome(bytes: &[u8]) -> Result<WelcomeInfo, InspectError> {
    peek_mls_message(bytes, &[WireFormat::Welcome])?;
    // MLSMessage header (4 bytes), then Welcome.cipher_suite.
    check_ciphersuite(peek_u16(bytes, 4)?)?;
    let MlsMessageBodyIn::Welcome(welcome) = decode_mls_message(bytes)?.extract() else {
        return Err(InspectError::Malformed("wire format mismatch".into()));
    };
    check_ciphersuite(welcome.ciphersuite().into())?;
    Ok(WelcomeInfo {
        new_member_refs: welcome
            .secrets()
            .iter()
            .map(|secrets| secrets.new_member().as_slice().to_vec())
            .collect(),
    })
}

/// Reads the group id and epoch of a `GroupInfo` (as published for external
/// joins). The signature is *not* verified (see the crate docs).
///
/// # Errors
///
/// [`InspectError::WrongWireFormat`] if it is not an `mls_group_info`
/// `MLSMessage`, [`InspectError::WrongCiphersuite`] if its group context is
/// not for [`CIPHERSUITE`], or a decoding error.
pub fn inspect_group_info(bytes: &[u8]) -> Result<GroupInfoHeader, InspectError> {
    peek_mls_message(bytes, &[WireFormat::GroupInfo])?;
    // MLSMessage header (4 bytes), GroupContext.version (2 bytes), then
    // GroupContext.cipher_suite.
    check_ciphersuite(peek_u16(bytes, 6)?)?;
    let MlsMessageBodyIn::GroupInfo(group_info) = decode_mls_message(bytes)?.extract() else {
        return Err(InspectError::Malformed("wire format mismatch".into()));
    };
    check_ciphersuite(group_info.ciphersuite().into())?;
    Ok(GroupInfoHeader {
        group_id: group_info.group_id().as_slice().to_vec(),
        epoch: group_info.epoch().as_u64(),
    })
}

/// Decodes either form of `KeyPackage` (see [`inspect_key_package`]).
///
/// A bare `KeyPackage` starts `version, cipher_suite`, an `MLSMessage`
/// starts `version, wire_format`, so the second `u16` is ambiguous.
/// `wire_format == mls_key_package` (5) means the wrapped form (a bare one
/// would be for ciphersuite 5, which is refused either way). Anything else is
/// read as a bare `KeyPackage`, unless it decodes in full as some other
/// `MLSMessage`, in which case the caller uploaded the wrong kind of object.
fn decode_key_package(bytes: &[u8]) -> Result<KeyPackageIn, InspectError> {
    check_version(peek_u16(bytes, 0)?)?;
    if peek_u16(bytes, 2)? == WireFormat::KeyPackage as u16 {
        // MLSMessage header (4 bytes), KeyPackage.version, KeyPackage.cipher_suite.
        check_version(peek_u16(bytes, 4)?)?;
        check_ciphersuite(peek_u16(bytes, 6)?)?;
        return match decode_mls_message(bytes)?.extract() {
            MlsMessageBodyIn::KeyPackage(key_package) => Ok(key_package),
            _ => Err(InspectError::Malformed("wire format mismatch".into())),
        };
    }
    if let Ok(other) = MlsMessageIn::tls_deserialize_exact(bytes) {
        return Err(InspectError::WrongWireFormat {
            expected: &[WireFormat::KeyPackage],
            found: WireFormat::from_u16(other.wire_format() as u16).ok_or_else(|| {
                InspectError::Malformed("unexpected wire format from openmls".into())
            })?,
        });
    }
    check_ciphersuite(peek_u16(bytes, 2)?)?;
    KeyPackageIn::tls_deserialize_exact(bytes).map_err(map_codec_error)
}

fn key_package_info(
    key_package: &KeyPackage,
    now_unix: u64,
) -> Result<KeyPackageInfo, InspectError> {
    // Already guaranteed by the peek; re-checked on the decoded value.
    check_ciphersuite(key_package.ciphersuite().into())?;

    let lifetime = key_package.life_time();
    if now_unix >= lifetime.not_after() {
        return Err(InspectError::Expired { not_after: lifetime.not_after(), now: now_unix });
    }
    if now_unix < lifetime.not_before() {
        return Err(InspectError::NotYetValid { not_before: lifetime.not_before(), now: now_unix });
    }

    let leaf = key_package.leaf_node();
    let credential = leaf.credential().clone();
    let credential_type = credential.credential_type();
    if credential_type != CredentialType::Basic {
        return Err(InspectError::NotBasicCredential(credential_type.into()));
    }
    let identity = BasicCredential::try_from(credential)
        .map_err(|e| InspectError::Malformed(e.to_string()))?
        .identity()
        .to_vec();

    let reference =
        key_package.hash_ref(&*CRYPTO).map_err(|e| InspectError::Malformed(e.to_string()))?;

    Ok(KeyPackageInfo {
        identity,
        signature_key: leaf.signature_key().as_slice().to_vec(),
        last_resort: key_package.last_resort(),
        reference: reference.as_slice().to_vec(),
        not_after: lifetime.not_after(),
    })
}

/// Checks the `MLSMessage` header (version, wire format) and returns the
/// wire format if it is one of `expected`.
fn peek_mls_message(
    bytes: &[u8],
    expected: &'static [WireFormat],
) -> Result<WireFormat, InspectError> {
    check_version(peek_u16(bytes, 0)?)?;
    let raw = peek_u16(bytes, 2)?;
    let found = WireFormat::from_u16(raw).ok_or(InspectError::UnknownWireFormat(raw))?;
    if expected.contains(&found) {
        Ok(found)
    } else {
        Err(InspectError::WrongWireFormat { expected, found })
    }
}

/// Decodes with the `std::io::Read`-based [`Deserialize`] path on purpose:
/// `tls_codec` 0.5's slice-based `DeserializeBytes` for `VLBytes` has a
/// `debug_assert_eq!` that *panics* on truncated input in debug builds
/// (release builds return an error). The `Read` path returns an error in both.
fn decode_mls_message(bytes: &[u8]) -> Result<MlsMessageIn, InspectError> {
    MlsMessageIn::tls_deserialize_exact(bytes).map_err(map_codec_error)
}

fn peek_u16(bytes: &[u8], offset: usize) -> Result<u16, InspectError> {
    bytes
        .get(offset..offset + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| InspectError::Malformed(format!("truncated: {} bytes", bytes.len())))
}

fn check_version(version: u16) -> Result<(), InspectError> {
    if version == PROTOCOL_VERSION_MLS10 {
        Ok(())
    } else {
        Err(InspectError::UnsupportedVersion(version))
    }
}

fn check_ciphersuite(ciphersuite: u16) -> Result<(), InspectError> {
    if ciphersuite == CIPHERSUITE {
        Ok(())
    } else {
        Err(InspectError::WrongCiphersuite(ciphersuite))
    }
}

fn map_codec_error(error: tls_codec::Error) -> InspectError {
    match error {
        tls_codec::Error::TrailingData => InspectError::TrailingBytes,
        other => InspectError::Malformed(other.to_string()),
    }
}

fn map_verify_error(error: KeyPackageVerifyError) -> InspectError {
    match error {
        KeyPackageVerifyError::InvalidSignature
        | KeyPackageVerifyError::InvalidLeafNodeSignature => InspectError::BadSignature,
        KeyPackageVerifyError::LifetimeError(LifetimeError::Expired { not_after, now }) => {
            InspectError::Expired { not_after, now }
        }
        KeyPackageVerifyError::LifetimeError(LifetimeError::NotValidYet { not_before, now }) => {
            InspectError::NotYetValid { not_before, now }
        }
        other => InspectError::InvalidKeyPackage(other.to_string()),
    }
}
