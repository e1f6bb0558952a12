//! The pipeline's signing key (ed25519, PKCS#8 PEM as `openssl genpkey -algorithm ed25519`
//! writes it) and the public keys a verifier trusts (SPKI PEM, as `openssl pkey -pubout`
//! writes it). A key's id is the sha256 of its public key's DER encoding (SPKI), in hex: the
//! same key has the same id whoever computes it, and the id reveals nothing of the secret.
//!
//! The secret key is read from a file (`--signing-key FILE`, `FCI_SIGNING_KEY`), never from
//! an argument or a variable's value, and never printed: its errors name only the file.

use crate::error::FciError;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{Signer, Verifier};
use std::path::Path;

/// What `read_pem` calls the signing key (its errors never show what was given).
const SECRET: &str = "signing key";

/// At most this much of a key file is read: a PEM key is a few hundred bytes.
const KEY_FILE_MAX: u64 = 64 * 1024;

fn read_pem(path: &Path, what: &str) -> Result<String, FciError> {
    use std::io::Read;
    // A CI "secret text" binding puts the key itself where its file's name belongs: that
    // text must not reach the error line (nor anything else).
    let given = path.as_os_str().as_encoded_bytes();
    if given.windows(10).any(|w| w == b"-----BEGIN") || given.contains(&b'\n') {
        return Err(FciError::Usage(format!(
            "the {what} was given as its text, not as the name of a file holding it (--signing-key FILE, FCI_SIGNING_KEY=FILE; with Jenkins, a secret *file* credential): not shown"
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| {
        if what == SECRET {
            // What was given may be the key itself in some encoding (base64, one PEM line):
            // never echoed.
            FciError::Usage(format!(
                "the signing key file (--signing-key, FCI_SIGNING_KEY) cannot be opened: {e} (what was given is not shown: it may be the key itself)"
            ))
        } else {
            FciError::input(path, format!("cannot read the {what}: {e}"))
        }
    })?;
    let mut text = String::new();
    f.take(KEY_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(|e| FciError::input(path, format!("cannot read the {what}: {e}")))?;
    Ok(text)
}

/// The pipeline's ed25519 signing key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key in `path` (PKCS#8 PEM); an unreadable or other file is the caller's mistake.
    pub fn from_file(path: &Path) -> Result<SigningKey, FciError> {
        let text = read_pem(path, SECRET)?;
        // The parser's message may quote the key's bytes: never shown.
        ed25519_dalek::SigningKey::from_pkcs8_pem(&text)
            .map(SigningKey)
            .map_err(|_| {
                FciError::input(
                    path,
                    "not an ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519)",
                )
            })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn key_id(&self) -> String {
        self.public().key_id()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// A trusted ed25519 public key.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// The key in `path` (SPKI PEM).
    pub fn from_file(path: &Path) -> Result<PublicKey, FciError> {
        let text = read_pem(path, "public key")?;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&text)
            .map(PublicKey)
            .map_err(|_| {
                FciError::input(
                    path,
                    "not an ed25519 public key in SPKI PEM (openssl pkey -pubout)",
                )
            })
    }

    /// sha256 of the SPKI DER, hex.
    pub fn key_id(&self) -> String {
        let der = self
            .0
            .to_public_key_der()
            .expect("an ed25519 key always has an SPKI encoding");
        crate::digest::sha256_bytes(der.as_bytes())
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.0.verify(message, &sig).is_ok()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::process::Command;

    /// A key pair made by openssl, as a pipeline's administrator makes it.
    pub fn openssl_pair() -> (SigningKey, PublicKey) {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("key.pem");
        let public = d.path().join("pub.pem");
        let st = Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key)
            .status()
            .expect("openssl (the tests need it)");
        assert!(st.success());
        let st = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap();
        assert!(st.success());
        (
            SigningKey::from_file(&key).unwrap(),
            PublicKey::from_file(&public).unwrap(),
        )
    }

    #[test]
    fn openssls_keys_are_read_and_pair_up() {
        let (key, public) = openssl_pair();
        assert_eq!(key.public(), public);
        assert_eq!(key.key_id(), public.key_id());
        assert_eq!(key.key_id().len(), 64);
        let sig = key.sign(b"m");
        assert!(public.verify(b"m", &sig));
        assert!(!public.verify(b"n", &sig));
        assert!(!public.verify(b"m", &sig[..10]));
    }

    #[test]
    fn a_bad_key_file_is_named_and_its_content_never_shown() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("key.pem");
        std::fs::write(
            &p,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = SigningKey::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("PKCS#8"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        // A public key where the private one is expected, and the reverse.
        let e = PublicKey::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("SPKI"), "{e}");
        assert!(SigningKey::from_file(&d.path().join("missing.pem")).is_err());
    }
}
