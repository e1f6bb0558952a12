//! The chain from an artifact back to the dist-git commit: each link is a signed provenance
//! statement whose subject is the artifact's sha256, and whose resolved dependencies are the
//! next links (an image's commit, a commit's RPMs, an RPM's dist-git commit and lookaside
//! sources). Where the artifact's bytes are at hand (the workspace's object store, the OSTree
//! repository, the file given) they are hashed too: an altered RPM breaks its link.

use super::evidence::{Evidence, What};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Who made a link, as its signed statement says.
#[derive(Serialize, Debug, Clone)]
pub struct MadeBy {
    pub stage: String,
    pub attestation: String,
    pub keyid: String,
    pub run: Option<String>,
    pub builder: Option<String>,
}

/// One link of the chain.
#[derive(Serialize, Debug, Clone)]
pub struct Node {
    /// image, ostree-commit, rpm, srpm, dist-git, source, base
    pub kind: String,
    pub name: String,
    pub digest: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_by: Option<MadeBy>,
    /// The file hashed against the digest, when one was at hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Node>,
}

impl Node {
    fn leaf(kind: &str, name: &str, digest: &Value) -> Node {
        let digest = digest
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Node {
            kind: kind.into(),
            name: name.into(),
            digest,
            made_by: None,
            file: None,
            note: None,
            problem: None,
            inputs: Vec::new(),
        }
    }

    /// Every node of the tree, this one first.
    pub fn walk(&self) -> Vec<&Node> {
        let mut out = vec![self];
        for i in &self.inputs {
            out.extend(i.walk());
        }
        out
    }

    pub fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// Where an artifact's bytes may be read: files by sha256, and the OSTree repository.
pub struct Files {
    pub by_sha256: BTreeMap<String, PathBuf>,
    pub ostree_repo: Option<PathBuf>,
}

pub struct Walk<'a> {
    pub evidence: &'a [Evidence],
    pub files: &'a Files,
    /// The run the target's provenance names: its statements are preferred.
    pub run: Option<String>,
    /// The chain's breaks, in the order met (the first is the one named).
    pub broken: Vec<String>,
    /// The dist-git commit the first link named; every link must name the same.
    git: Option<(String, String)>,
    seen: BTreeSet<String>,
}

/// The statement of `what` about `sha256` that speaks: of the preferred run if there is one,
/// else of any; the latest.
pub fn pick<'e>(
    evidence: &'e [Evidence],
    run: Option<&str>,
    sha256: &str,
    want: impl Fn(&What) -> bool,
) -> Option<&'e Evidence> {
    let all: Vec<&Evidence> = evidence
        .iter()
        .filter(|e| want(&e.what) && e.about(sha256))
        .collect();
    let of_run: Vec<&Evidence> = all
        .iter()
        .copied()
        .filter(|e| run.is_some() && e.run.as_deref() == run)
        .collect();
    let from = if of_run.is_empty() { all } else { of_run };
    from.into_iter().max_by(|a, b| a.time.cmp(&b.time))
}

/// The first twelve characters (a digest is hex; a hostile one need not be ASCII).
pub fn short(s: &str) -> &str {
    s.char_indices().nth(12).map_or(s, |(i, _)| &s[..i])
}

/// What a stage's provenance is of (`name`: as its subject names it).
fn kind_made_by(stage: &str, name: &str) -> &'static str {
    match stage {
        "image" => "image",
        "compose" => "ostree-commit",
        _ if name.ends_with(".src.rpm") => "srpm",
        _ => "rpm",
    }
}

impl<'a> Walk<'a> {
    pub fn new(evidence: &'a [Evidence], files: &'a Files) -> Walk<'a> {
        Walk {
            evidence,
            files,
            run: None,
            broken: Vec::new(),
            git: None,
            seen: BTreeSet::new(),
        }
    }

    fn provenance(&self, sha256: &str) -> Option<&'a Evidence> {
        pick(self.evidence, self.run.as_deref(), sha256, |w| {
            matches!(w, What::Provenance(_))
        })
    }

    /// The chain from the artifact with this sha256 (`kind` and `name` as the caller knows
    /// it, if at all).
    pub fn from(&mut self, sha256: &str, kind: Option<&str>, name: &str) -> Node {
        if self.run.is_none() {
            self.run = self.provenance(sha256).and_then(|e| e.run.clone());
        }
        self.link(sha256, kind, name, 0)
    }

    fn link(&mut self, sha256: &str, kind: Option<&str>, name: &str, depth: usize) -> Node {
        let prov = self.provenance(sha256);
        let stage = prov.map(|e| match &e.what {
            What::Provenance(s) => s.clone(),
            _ => String::new(),
        });
        // The statement's own name for it, when it has one (signed; the caller's is not).
        let signed_name = prov.and_then(|e| {
            e.statement["subject"]
                .as_array()?
                .iter()
                .find(|s| s["digest"]["sha256"].as_str() == Some(sha256))?["name"]
                .as_str()
                .map(String::from)
        });
        let name = signed_name.unwrap_or_else(|| name.to_string());
        // What the signed statement makes of it wins over what the caller (a manifest) says.
        let kind = stage
            .as_deref()
            .map(|s| kind_made_by(s, &name).to_string())
            .or_else(|| kind.map(String::from))
            .unwrap_or_else(|| "file".into());
        let mut node = Node::leaf(&kind, &name, &serde_json::json!({ "sha256": sha256 }));
        self.check_file(&mut node, sha256);
        let Some(prov) = prov else {
            let why = "no provenance signed by a trusted key names it";
            node.problem = Some(why.into());
            self.broken
                .push(format!("{kind} {name} (sha256 {}): {why}", short(sha256)));
            return node;
        };
        let p = &prov.statement["predicate"];
        node.made_by = Some(MadeBy {
            stage: stage.clone().unwrap_or_default(),
            attestation: prov.file.clone(),
            keyid: prov.keyid.clone(),
            run: prov.run.clone(),
            builder: p["runDetails"]["builder"]["id"].as_str().map(String::from),
        });
        if !self.seen.insert(sha256.to_string()) || depth > 8 {
            return node;
        }
        let stage = stage.unwrap_or_default();
        let deps = p["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for d in deps {
            let dname = d["name"].as_str().or(d["uri"].as_str()).unwrap_or("?");
            let digest = &d["digest"];
            if let Some(on) = d["annotations"]["uncommittedChangesOn"].as_str() {
                let uri = d["uri"].as_str().unwrap_or("?");
                let mut n = Node::leaf("dist-git", uri, digest);
                let why = format!(
                    "built from uncommitted changes on top of commit {}: no dist-git commit holds what was built",
                    short(on)
                );
                n.problem = Some(why.clone());
                self.broken.push(format!("{kind} {name}: {why}"));
                node.inputs.push(n);
            } else if let Some(commit) = digest["gitCommit"].as_str() {
                let uri = d["uri"].as_str().unwrap_or("?");
                let mut n = Node::leaf("dist-git", uri, digest);
                match &self.git {
                    None => self.git = Some((uri.to_string(), commit.to_string())),
                    Some((_, first)) if first != commit => {
                        let why = format!(
                            "the {stage} provenance names dist-git commit {}, the chain's first link {}",
                            short(commit),
                            short(first)
                        );
                        n.problem = Some(why.clone());
                        self.broken.push(format!("{kind} {name}: {why}"));
                    }
                    Some(_) => {}
                }
                node.inputs.push(n);
            } else if dname == "base" {
                let mut n = Node::leaf("base", dname, digest);
                if let Some(r) = d["annotations"]["ostree_ref"].as_str() {
                    n.name = r.to_string();
                }
                n.note = Some("the known-good base: attested by the runs that made it".into());
                node.inputs.push(n);
            } else if d["annotations"]["from"] == "lookaside" {
                // A source tarball, whatever hash the `sources` file gives it.
                node.inputs.push(Node::leaf("source", dname, digest));
            } else if let Some(sha) = digest["sha256"].as_str() {
                let next = match stage.as_str() {
                    "image" => "ostree-commit",
                    _ => "rpm",
                };
                let n = self.link(sha, Some(next), dname, depth + 1);
                node.inputs.push(n);
            } else {
                node.inputs.push(Node::leaf("source", dname, digest));
            }
        }
        node
    }

    /// Hashes the artifact's bytes where they are at hand; a difference breaks the link.
    fn check_file(&mut self, node: &mut Node, sha256: &str) {
        let path = if node.kind == "ostree-commit" {
            let Some(repo) = &self.files.ostree_repo else {
                return;
            };
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return;
            }
            // An OSTree commit's checksum is the sha256 of its commit object.
            repo.join("objects")
                .join(&sha256[..2])
                .join(format!("{}.commit", &sha256[2..]))
        } else {
            match self.files.by_sha256.get(sha256) {
                Some(p) => p.clone(),
                None => {
                    node.note = Some("its bytes are not in this workspace: not checked".into());
                    return;
                }
            }
        };
        if !path.is_file() {
            node.note = Some(format!(
                "{} is not here: its bytes were not checked",
                path.display()
            ));
            return;
        }
        node.file = Some(path.display().to_string());
        if node.kind == "ostree-commit" {
            node.note = Some(
                "its commit object hashed; the files of its tree are `ostree fsck`'s to check"
                    .into(),
            );
        }
        match crate::digest::sha256_file(&path) {
            Ok((got, _)) if got == sha256 => {}
            Ok((got, _)) => {
                let why = format!(
                    "the file {} has sha256 {got}, its provenance names {sha256}",
                    path.display()
                );
                node.problem = Some(why.clone());
                self.broken
                    .push(format!("{} {}: {why}", node.kind, node.name));
            }
            Err(e) => {
                let why = format!("{e:#}");
                node.problem = Some(why.clone());
                self.broken
                    .push(format!("{} {}: {why}", node.kind, node.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_short_digest_is_cut_at_a_character() {
        assert_eq!(super::short("0123456789abcdef"), "0123456789ab");
        assert_eq!(super::short("aééééééééééééé"), "aééééééééééé");
        assert_eq!(super::short("abc"), "abc");
    }
}
