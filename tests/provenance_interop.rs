//! fci's DSSE envelopes checked by the reference tooling, as a third party would check them
//! offline (issue 18): securesystemslib's `dsse.Envelope.verify` with the pipeline's public key
//! loaded from the SPKI PEM openssl wrote, from the venv `setup.sh` makes (/opt/fci/in-toto,
//! or INTOTO_VENV). A missing venv fails the test naming it: never a silent skip.

use fci::provenance::dsse::{Envelope, IN_TOTO};
use fci::provenance::keys::SigningKey;
mod common;
use common::intoto::reference_verify;

const NEEDS: common::Needs = &[&[common::tool::OPENSSL]];

#[test]
fn the_reference_tooling_verifies_fcis_envelopes_and_refuses_a_flipped_byte() {
    common::needs();
    let d = tempfile::tempdir().unwrap();
    let (key, public) = common::intoto::openssl_key_pair(d.path(), "pipeline");
    let signing = SigningKey::from_file(&key).unwrap();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "hello-atomic-1.0-1.fc41.x86_64.rpm",
                     "digest": {"sha256": "d655ddd5db08e7445a7e8d243e9bf593cc8b5d543c690fa2f994a0ae107ee5a3"}}],
        "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
        "predicate": {"result": "PASSED", "passedTests": ["functional"], "failedTests": [],
                      "configuration": []},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let env = Envelope::new(IN_TOTO, &payload, Some(&signing));
    let file = d.path().join("envelope.json");
    std::fs::write(&file, serde_json::to_vec(&env).unwrap()).unwrap();
    let (ok, out) = reference_verify(&file, &public, &signing.key_id());
    assert!(ok, "{out}");
    assert!(
        out.starts_with("https://in-toto.io/Statement/v1 d655ddd5"),
        "{out}"
    );
    assert!(out.contains(&signing.key_id()), "{out}");

    // One byte of the statement flipped: the reference tooling refuses it too.
    let mut bad = payload.clone();
    let at = bad.iter().position(|b| *b == b'P').unwrap();
    bad[at] = b'F';
    let mut tampered = env.clone();
    tampered.payload = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&bad)
    };
    std::fs::write(&file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let (ok, out) = reference_verify(&file, &public, &signing.key_id());
    assert!(!ok, "{out}");
    assert!(out.contains("VerificationError"), "{out}");
}
