//! TLS to an upstream with `tls:` settings: its CAs (else the system's), a client certificate
//! for mutual TLS, TLS 1.3 only when asked. Built at load, so a bad file is a load error and
//! a reload reads the files again.

use crate::decision::UpstreamTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

pub fn client_config(files: &UpstreamTls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if files.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("tls.ca: {e}"))?;
                roots.add(cert).map_err(|e| format!("tls.ca: {e}"))?;
            }
            if roots.is_empty() {
                return Err("tls.ca: no certificate in the file".into());
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("tls.cert: {e}"))?;
            if chain.is_empty() {
                return Err("tls.cert: no certificate in the file".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("tls.key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls.cert and tls.key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    // The connector adds ALPN (`http/1.1`) itself.
    Ok(config)
}
