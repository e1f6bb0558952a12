//! DSSE (Dead Simple Signing Envelope, v1.0): what is signed is the pre-authentication
//! encoding of the payload type and the payload, never the JSON around them, so no parser's
//! view of the envelope can change what a signature covers.
//!
//! Hand-written (about forty lines): the encoding is one line of the spec, and no maintained
//! Rust crate implements DSSE without pulling in a whole sigstore client.

use super::keys::{PublicKey, SigningKey};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The payload type of an in-toto Statement (in-toto attestation framework, envelope layer).
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The most signatures an envelope may carry to be read at all.
pub const MAX_SIGNATURES: usize = 16;

/// A DSSE envelope as JSON carries it: the payload base64-encoded (standard alphabet, padded).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Signature {
    /// The signing key's id (`keys::key_id`): which of the trusted keys to try first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// The signature over `pae`, base64.
    pub sig: String,
}

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Envelope {
    /// `payload` of `payload_type`, signed with `key` (none: unsigned, and it says so by having
    /// no signature).
    pub fn new(payload_type: &str, payload: &[u8], key: Option<&SigningKey>) -> Envelope {
        let signatures = key
            .map(|k| {
                vec![Signature {
                    keyid: k.key_id(),
                    sig: b64().encode(k.sign(&pae(payload_type, payload))),
                }]
            })
            .unwrap_or_default();
        Envelope {
            payload: b64().encode(payload),
            payload_type: payload_type.to_string(),
            signatures,
        }
    }

    /// The payload's bytes, if it is valid base64.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        b64()
            .decode(&self.payload)
            .map_err(|e| format!("the payload is not base64: {e}"))
    }

    /// The id of the first trusted key whose signature over the envelope verifies; an error
    /// saying why none does (no signature, a bad one, an untrusted key).
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<String, String> {
        if self.signatures.is_empty() {
            return Err("the envelope is unsigned".into());
        }
        // An envelope is untrusted input: thousands of junk signatures must not cost
        // thousands of verifications each (fci writes one; a few co-signers are plenty).
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(format!(
                "{} signatures (at most {MAX_SIGNATURES} are read)",
                self.signatures.len()
            ));
        }
        let payload = self.payload_bytes()?;
        let signed = pae(&self.payload_type, &payload);
        let ids: Vec<String> = trusted.iter().map(PublicKey::key_id).collect();
        let mut why = Vec::new();
        for s in &self.signatures {
            // A key id names the one key to try; none (another signer's tooling) means all.
            let keys: Vec<&PublicKey> = trusted
                .iter()
                .zip(&ids)
                .filter(|(_, id)| s.keyid.is_empty() || **id == s.keyid)
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                why.push(format!(
                    "no trusted key verifies the signature of key {:?}",
                    s.keyid
                ));
                continue;
            }
            let Ok(sig) = b64().decode(&s.sig) else {
                why.push("a signature that is not base64".to_string());
                continue;
            };
            for k in keys {
                if k.verify(&signed, &sig) {
                    return Ok(k.key_id());
                }
            }
            why.push(if trusted.iter().any(|k| k.key_id() == s.keyid) {
                format!("the signature of key {} does not verify", s.keyid)
            } else {
                format!("no trusted key verifies the signature of key {:?}", s.keyid)
            });
        }
        Err(why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specs_encoding() {
        // The DSSE protocol's own example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_any_flipped_byte_does_not() {
        let (key, public) = super::super::keys::tests::openssl_pair();
        let env = Envelope::new(IN_TOTO, br#"{"_type":"x"}"#, Some(&key));
        assert_eq!(env.verify(std::slice::from_ref(&public)), Ok(key.key_id()));
        // Through JSON, as it is stored.
        let back: Envelope = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert!(back.verify(std::slice::from_ref(&public)).is_ok());
        // The payload changed: the signature no longer covers it.
        let mut bad = env.clone();
        bad.payload = b64().encode(br#"{"_type":"y"}"#);
        assert!(bad.verify(std::slice::from_ref(&public)).is_err());
        // The payload type is signed too.
        let mut bad = env.clone();
        bad.payload_type = "application/json".into();
        assert!(bad.verify(std::slice::from_ref(&public)).is_err());
        // A flipped byte of the signature.
        let mut bad = env.clone();
        let mut sig = b64().decode(&bad.signatures[0].sig).unwrap();
        sig[7] ^= 1;
        bad.signatures[0].sig = b64().encode(sig);
        let e = bad.verify(std::slice::from_ref(&public)).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // Another key is not trusted for it; no signature at all is said so.
        let (_, other) = super::super::keys::tests::openssl_pair();
        assert!(env.verify(&[other]).is_err());
        let unsigned = Envelope::new(IN_TOTO, b"{}", None);
        assert_eq!(
            unsigned.verify(std::slice::from_ref(&public)),
            Err("the envelope is unsigned".to_string())
        );
        // Junk signatures of untrusted key ids cost nothing; too many are not read at all.
        let mut junk = env.clone();
        let good = junk.signatures[0].clone();
        junk.signatures = (0..MAX_SIGNATURES - 1)
            .map(|i| Signature {
                keyid: format!("junk{i}"),
                sig: good.sig.clone(),
            })
            .chain(std::iter::once(good.clone()))
            .collect();
        assert_eq!(junk.verify(std::slice::from_ref(&public)), Ok(key.key_id()));
        junk.signatures.push(junk.signatures[0].clone());
        let e = junk.verify(&[public]).unwrap_err();
        assert!(e.contains("at most 16"), "{e}");
    }
}
