//! The reference in-toto tooling (securesystemslib's DSSE, from the venv `setup.sh` makes:
//! /opt/fci/in-toto, or INTOTO_VENV), as a third party would run it on fci's envelopes. A
//! missing venv fails the test naming it: never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn venv_python() -> PathBuf {
    let venv = std::env::var("INTOTO_VENV").unwrap_or_else(|_| "/opt/fci/in-toto".into());
    let py = Path::new(&venv).join("bin/python");
    assert!(
        py.is_file(),
        "{}: missing: run ./setup.sh --deps-only (it installs in-toto and securesystemslib)",
        py.display()
    );
    py
}

/// Verifies `envelope` (a file) with the SPKI PEM `public` under key id `keyid`, as
/// securesystemslib does: its exit status and output.
pub fn reference_verify(envelope: &Path, public: &Path, keyid: &str) -> (bool, String) {
    const SCRIPT: &str = r#"
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
env = Envelope.from_dict(json.load(open(sys.argv[1])))
pub = load_pem_public_key(open(sys.argv[2], "rb").read())
key = SSlibKey.from_crypto(pub, keyid=sys.argv[3], scheme="ed25519")
ok = env.verify([key], 1)
stmt = json.loads(env.payload)
print(stmt["_type"], stmt["subject"][0]["digest"]["sha256"], list(ok))
"#;
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(envelope)
        .arg(public)
        .arg(keyid)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An ed25519 key pair made as an administrator makes the pipeline's: `openssl genpkey`, then
/// `openssl pkey -pubout`; (PKCS#8 PEM secret key, SPKI PEM public key) in `dir`.
pub fn openssl_key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            key.to_str().unwrap(),
        ],
        vec![
            "pkey",
            "-pubout",
            "-in",
            key.to_str().unwrap(),
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let st = Command::new("openssl").args(&args).status().unwrap();
        assert!(st.success(), "openssl {args:?}");
    }
    (key, public)
}
