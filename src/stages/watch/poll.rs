//! One poll of every monitored package's followed branches. Local repositories are read
//! in-process, one after the other (opening one costs well under a millisecond); remote ones
//! get one `git ls-remote` each, `--jobs` at a time, and a changed branch is fetched into a
//! mirror under `state/watch/mirrors/`.

use super::git::Repo;
use super::{remote, Change, Watcher};
use crate::config::DistGit;
use crate::exec::Log;
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const AGAIN: &str = " (its state is not advanced: the next poll tries again)";

/// What one package's poll found: changes, and heads to record without emitting them.
#[derive(Default)]
struct Found {
    changes: Vec<Change>,
    first_seen: Vec<(String, String, String)>,
    /// `package/branch` of followed branches the repository does not have.
    missing: Vec<String>,
}

impl Watcher {
    pub fn poll(&mut self) -> Result<()> {
        let results: Vec<(String, Result<Found, String>)> = match &self.cfg.dist_git {
            DistGit::Dir(_) => self
                .cfg
                .packages
                .iter()
                .map(|p| (p.clone(), self.poll_local(p)))
                .collect(),
            DistGit::Url(_) => self.poll_remote()?,
        };
        let mut changes = Vec::new();
        let mut first_seen = Vec::new();
        let mut missing = Vec::new();
        for (package, r) in results {
            match r {
                Ok(f) => {
                    changes.extend(f.changes);
                    first_seen.extend(f.first_seen);
                    missing.extend(f.missing);
                }
                Err(why) => self.error(&format!("{package}: {why}{AGAIN}")),
            }
        }
        if !first_seen.is_empty() {
            crate::progress::note(&format!(
                "watch: {} branch head(s) seen for the first time, recorded (--emit-existing emits them)",
                first_seen.len()
            ));
        }
        for why in self.emit_all(changes, first_seen)? {
            self.error(&format!("{why}{AGAIN}"));
        }
        if !missing.is_empty() {
            crate::progress::note(&format!(
                "watch: {} followed branch(es) do not exist in their repositories (not an error: e.g. {})",
                missing.len(),
                missing[..missing.len().min(3)].join(", ")
            ));
        }
        Ok(())
    }

    /// What a branch head means: nothing new, a head seen for the first time, or a change.
    fn classify(
        &self,
        package: &str,
        branch: &str,
        head: &str,
        found: &mut Found,
    ) -> Option<Option<String>> {
        match self.heads.get(package, branch) {
            Some(old) if old == head => None,
            Some(old) => Some(Some(old.to_string())),
            None if self.emit_existing => Some(None),
            None => {
                found
                    .first_seen
                    .push((package.into(), branch.into(), head.into()));
                None
            }
        }
    }

    fn poll_local(&self, package: &str) -> Result<Found, String> {
        let dir = self.cfg.dist_git.dir_of(package).expect("a local dist-git");
        // Opened only when the ref files cannot be read alone, or for what changed.
        let mut repo = None;
        let heads = match super::git::read_heads(&dir, &self.cfg.branches) {
            Some(h) => h,
            None => {
                let opened = repo.insert(Repo::open(&dir)?);
                let heads: Result<Vec<_>, String> = self
                    .cfg
                    .branches
                    .iter()
                    .map(|b| Ok((b.clone(), opened.head(b)?)))
                    .collect();
                heads?
            }
        };
        let mut found = Found::default();
        for (branch, head) in heads {
            let Some(head) = head else {
                found.missing.push(format!("{package}/{branch}"));
                continue;
            };
            if let Some(old) = self.classify(package, &branch, &head, &mut found) {
                // The range needs the objects.
                let repo = match &mut repo {
                    Some(r) => r,
                    None => repo.insert(Repo::open(&dir)?),
                };
                let range = repo.range(old.as_deref(), &head)?;
                found.changes.push(Change {
                    package: package.into(),
                    branch,
                    repo: dir.to_string_lossy().into_owned(),
                    range,
                    trigger: json!({"kind": "poll"}),
                });
            }
        }
        Ok(found)
    }

    fn poll_remote(&self) -> Result<Vec<(String, Result<Found, String>)>> {
        let scratch = self.ws.scratch("watch-")?;
        let spinner = crate::progress::Spinner::new("watch");
        spinner.step(&format!(
            "asking {} dist-git repositories",
            self.cfg.packages.len()
        ));
        let next = AtomicUsize::new(0);
        let results: Mutex<BTreeMap<usize, Result<Found, String>>> = Mutex::default();
        std::thread::scope(|s| {
            for worker in 0..self.jobs.min(self.cfg.packages.len()) {
                let (next, results, scratch) = (&next, &results, scratch.path());
                s.spawn(move || {
                    let log = Log::create(&scratch.join(format!("ls-remote-{worker}.log")));
                    let mut log = match log {
                        Ok(l) => l,
                        Err(e) => {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            results.lock().unwrap().insert(i, Err(e.to_string()));
                            return;
                        }
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(package) = self.cfg.packages.get(i) else {
                            break;
                        };
                        let r = self.poll_one_remote(package, &mut log);
                        results.lock().unwrap().insert(i, r);
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap();
        Ok(self
            .cfg
            .packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let r = results
                    .remove(&i)
                    .unwrap_or_else(|| Err("not polled".into()));
                (p.clone(), r)
            })
            .collect())
    }

    fn poll_one_remote(&self, package: &str, log: &mut Log) -> Result<Found, String> {
        let url = self
            .cfg
            .dist_git
            .url_of(package)
            .expect("a remote dist-git");
        let heads = remote::ls_remote(&url, &self.cfg.branches, self.remote_timeout, log)?;
        let mut found = Found {
            missing: (self.cfg.branches.iter())
                .filter(|b| !heads.contains_key(*b))
                .map(|b| format!("{package}/{b}"))
                .collect(),
            ..Found::default()
        };
        for (branch, head) in heads {
            if let Some(old) = self.classify(package, &branch, &head, &mut found) {
                let dir = remote::fetch(
                    &url,
                    &branch,
                    &self.mirror(package),
                    self.remote_timeout,
                    log,
                )?;
                let repo = Repo::open(&dir)?;
                let range = repo.range(old.as_deref(), &head)?;
                found.changes.push(Change {
                    package: package.into(),
                    branch,
                    repo: url.clone(),
                    range,
                    trigger: json!({"kind": "poll"}),
                });
            }
        }
        Ok(found)
    }

    fn mirror(&self, package: &str) -> std::path::PathBuf {
        self.ws
            .state("watch/mirrors")
            .join(format!("{package}.git"))
    }
}

/// A package's repository as it is now (fetched first when remote), where the build stage
/// will find it, and the branch's head.
pub fn read_one(
    w: &Watcher,
    package: &str,
    branch: &str,
) -> Result<(Repo, String, Option<String>), String> {
    match &w.cfg.dist_git {
        DistGit::Dir(_) => {
            let dir = w.cfg.dist_git.dir_of(package).expect("a local dist-git");
            if !dir.exists() {
                return Err(format!(
                    "no dist-git repository for this package ({} does not exist)",
                    dir.display()
                ));
            }
            let repo = Repo::open(&dir)?;
            let head = repo.head(branch)?;
            Ok((repo, dir.to_string_lossy().into_owned(), head))
        }
        DistGit::Url(_) => {
            let url = w.cfg.dist_git.url_of(package).expect("a remote dist-git");
            let scratch = w.ws.scratch("watch-").map_err(|e| e.to_string())?;
            let mut log =
                Log::create(&scratch.path().join("fetch.log")).map_err(|e| e.to_string())?;
            let dir = remote::fetch(&url, branch, &w.mirror(package), w.remote_timeout, &mut log)?;
            let repo = Repo::open(&dir)?;
            let head = repo.head(branch)?;
            Ok((repo, url, head))
        }
    }
}
