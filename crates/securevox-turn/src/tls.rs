//! TURN over TLS (RFC 8656 §3.1, `turns:`): the certificate the operator configured, served
//! with rustls on the ring provider; TLS 1.2 and 1.3, no client certificates.

use crate::settings::TlsFiles;
use crate::StartError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::TlsAcceptor;

pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, StartError> {
    let shown = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("{}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| shown(&files.cert, &e))?;
    if chain.is_empty() {
        return Err(shown(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| shown(&files.key, &e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| {
            StartError::Tls(format!("{} and {}: {e}", files.cert.display(), files.key.display()))
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
