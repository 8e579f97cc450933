//! Dispatch's public keys: Ed25519, as PEM SubjectPublicKeyInfo blocks (what
//! `openssl pkey -pubout` writes). A file may hold several, so that dispatch can rotate its
//! key: a command verifies if any of them signed it.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no PEM public key (-----BEGIN PUBLIC KEY-----) in the file")]
    Empty,
    #[error("public key {index} is not an Ed25519 key in PEM SubjectPublicKeyInfo form ({reason}); make one with: openssl pkey -in dispatch.key -pubout")]
    Invalid { index: usize, reason: String },
}

/// Dispatch's private key from PEM PKCS#8 (what `openssl genpkey -algorithm ed25519` writes),
/// for the signing side.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Invalid {
        index: 1,
        reason: format!("not an Ed25519 private key in PEM PKCS#8 form: {e}; make one with: openssl genpkey -algorithm ed25519"),
    })
}

#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<VerifyingKey>,
}

const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const END: &str = "-----END PUBLIC KEY-----";

impl Keyring {
    /// Reads every `PUBLIC KEY` block of `pem` (text around them is ignored, as comments).
    pub fn from_pem(pem: &str) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find(BEGIN) {
            let Some(len) = rest[start..].find(END) else {
                return Err(KeyError::Invalid {
                    index: keys.len() + 1,
                    reason: "no -----END PUBLIC KEY----- line".into(),
                });
            };
            let block = &rest[start..start + len + END.len()];
            let key = VerifyingKey::from_public_key_pem(block).map_err(|e| KeyError::Invalid {
                index: keys.len() + 1,
                reason: e.to_string(),
            })?;
            keys.push(key);
            rest = &rest[start + len + END.len()..];
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keyring { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether one of the keys signed `message` with `sig` (strict verification: no
    /// malleable or small-order signatures).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.keys
            .iter()
            .any(|k| k.verify_strict(message, &sig).is_ok())
    }
}
