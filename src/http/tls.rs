//! TLS for `ssehub serve`: rustls with one crypto provider (`ring`), ALPN
//! `h2` and `http/1.1`, and a certificate that can be replaced while the
//! server runs.
//!
//! # Design
//!
//! The server's certificate and key live in a [`CertStore`], an
//! [`ArcSwap`] that rustls asks for the certificate at every handshake
//! ([`ResolvesServerCert`]). [`CertStore::reload`] re-reads both PEM files
//! and swaps them in; handshakes after the swap present the new
//! certificate, and connections already established keep the session keys
//! they negotiated, so open streams are untouched. `ssehub serve` reloads on
//! SIGHUP. A reload that fails (a missing file, a key that does not match
//! the certificate) keeps the old certificate and reports why.
//!
//! ALPN decides the protocol: `h2` goes to hyper's HTTP/2 server, anything
//! else (`http/1.1`, or no ALPN) to the same front as the plain listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::error::{ConfigError, Setting};

/// The ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The server certificate, swappable at run time (see the module docs).
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Reads the PEM certificate chain at `cert_path` and the PEM private
    /// key at `key_path`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, holds no certificate or key, or a key
    /// that does not match the certificate.
    pub fn load(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<CertStore, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let certified = read_certified_key(cert_path, key_path, &provider)
            .map_err(|reason| ConfigError::new(Setting::Tls, reason))?;
        Ok(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: ArcSwap::from_pointee(certified),
        })
    }

    /// Re-reads both files; on success new handshakes use them, on failure
    /// the current certificate stays.
    ///
    /// # Errors
    ///
    /// As [`CertStore::load`].
    pub fn reload(&self) -> Result<(), ConfigError> {
        let certified = read_certified_key(&self.cert_path, &self.key_path, &self.provider)
            .map_err(|reason| ConfigError::new(Setting::Tls, reason))?;
        self.current.store(Arc::new(certified));
        Ok(())
    }

    /// A TLS acceptor presenting this store's current certificate, offering
    /// `h2` then `http/1.1`.
    ///
    /// # Errors
    ///
    /// When the provider supports no safe protocol version (it does).
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, ConfigError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| ConfigError::new(Setting::Tls, format!("configuration: {error}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("TLS certificate {}: {error}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in the file",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| format!("TLS key {}: {error}", key_path.display()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| {
        format!(
            "TLS certificate {} and key {}: {error}",
            cert_path.display(),
            key_path.display()
        )
    })
}
