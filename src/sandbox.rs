//! Isolation for untrusted package code (spec scripts, tests) with bubblewrap.
//!
//! The host root is visible read-only, the network is unshared unless asked for, and only the
//! run's own directories are writable. A subject root can be layered over host directories
//! (`/usr`, `/etc`, ...) with read-only overlayfs mounts; bubblewrap 0.8 has no overlay support,
//! so fci mounts them itself in a private mount namespace (`unshare -m`, then the hidden
//! `fci __sandbox` helper) before handing over to bwrap. A sandbox may also show a tree as a
//! root of its own ([`Guest`], `fci integrate`), which its commands enter with chroot: the one
//! capability such a sandbox keeps (see `isolation_args`).

use crate::error::FciError;
use crate::exec::Cmd;
use anyhow::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A read-only overlay of `upper` directories over the host directory `target`.
#[derive(Clone, Debug)]
pub struct Overlay {
    pub layers: Vec<PathBuf>,
    pub target: PathBuf,
    /// An empty directory to mount the merged view on.
    pub mountpoint: PathBuf,
}

/// What a path is in the sandbox's view, for covering it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen {
    Dir,
    Link,
    Other,
}

#[derive(Default, Clone, Debug)]
pub struct Sandbox {
    pub network: bool,
    pub writable: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    pub overlays: Vec<Overlay>,
    pub env: Vec<(String, OsString)>,
    pub chdir: Option<PathBuf>,
    /// Hide home directories and the host's temporary directories.
    pub hide_private: bool,
    /// Directories replaced by an empty one (fci's workspace: other runs' files, the overlay
    /// mountpoints); `readonly` and `writable` paths inside them are bound back afterwards.
    pub hide: Vec<PathBuf>,
    /// What everything in the sandbox may use together (see `crate::limits`).
    pub limits: crate::limits::Limits,
    /// A second root for test commands (`fci integrate`), mounted at [`GUEST_ROOT`].
    pub guest: Option<Guest>,
}

/// Where a sandbox shows its [`Guest`] root.
pub const GUEST_ROOT: &str = "/run/fci-guest";
/// The host's chroot(8), bound where no overlay of the subject reaches (the tree's own
/// `chroot` would shadow it in the layered /usr).
pub const GUEST_CHROOT: &str = "/run/fci-chroot";

/// The composed tree as a root of its own inside the sandbox, for the test commands of
/// `fci integrate`: they run `chroot GUEST_ROOT ...`, so a program finds only the tree's
/// libraries and programs, as at boot, while the runner (ansible-playbook, tmt: Python the
/// tree does not have) stays on the host's view (nothing of the tree layered over it).
///
/// The view: the tree's top-level entries read-only (directories bound, links as links),
/// `usr/etc` as `/etc` (OSTree keeps the default /etc there), fresh /proc and /dev, the host's
/// /sys read-only, empty sized tmpfs /tmp, /var and /run, and `writable` and `readonly` bound
/// at the same absolute paths as in the sandbox, so a test's directory, its logs and
/// `TEST_ARTIFACTS` mean the same in both views; the guest root itself is read-only.
#[derive(Clone, Debug)]
pub struct Guest {
    /// A checkout of the tree (never written: everything of it is bound read-only).
    pub tree: PathBuf,
    pub writable: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    /// The host's chroot(8), bound at [`GUEST_CHROOT`].
    pub chroot: PathBuf,
}

/// Top-level names of the tree that the guest gets fresh, never from the tree.
const GUEST_OWN: [&str; 7] = ["proc", "sys", "dev", "tmp", "var", "run", "etc"];

impl Guest {
    /// The bwrap arguments that build the guest root at [`GUEST_ROOT`] (after the sandbox's
    /// /run is mounted). `Err` is the host's: fci's directories lie where the tree fills.
    fn mount(&self, mut c: Cmd, mount_tmpfs: &mut impl FnMut(Cmd, &Path) -> Cmd) -> Result<Cmd> {
        let g = Path::new(GUEST_ROOT);
        let at = |p: &Path| g.join(p.strip_prefix("/").unwrap_or(p));
        c = mount_tmpfs(c, g);
        let binds: Vec<&PathBuf> = self.writable.iter().chain(&self.readonly).collect();
        // The first components of fci's own directories: there the tree's entry (an empty
        // /root, /home, /mnt or a link such as home -> var/home) gives way to a tmpfs that
        // bwrap can make their mount points in; a tree that fills it is the host's trouble.
        let firsts: Vec<OsString> = binds
            .iter()
            .filter_map(|p| p.components().nth(1))
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut names: Vec<OsString> = std::fs::read_dir(&self.tree)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let shown = name.to_string_lossy();
            if GUEST_OWN.contains(&shown.as_ref()) {
                continue;
            }
            let src = self.tree.join(&name);
            let dest = g.join(&name);
            let meta = std::fs::symlink_metadata(&src)?;
            if firsts.contains(&name) {
                let empty = meta.is_dir() && std::fs::read_dir(&src)?.next().is_none();
                if !(empty || meta.file_type().is_symlink()) {
                    return Err(FciError::Infra(format!(
                        "fci's run directory lies in /{shown}, which the composed tree fills: the tests cannot see both there; move the workspace (--workspace) elsewhere"
                    ))
                    .into());
                }
                c = mount_tmpfs(c, &dest);
            } else if meta.file_type().is_symlink() {
                c = c.arg("--symlink").arg(std::fs::read_link(&src)?).arg(&dest);
            } else {
                c = c.arg("--ro-bind").arg(&src).arg(&dest);
            }
        }
        c = mount_proc(c, &g.join("proc"));
        c = with_dev(c, &g.join("dev"));
        c = mount_tmpfs(c, &g.join("dev/shm"));
        c = c.arg("--remount-ro").arg(g.join("dev"));
        c = c.arg("--ro-bind").arg("/sys").arg(g.join("sys"));
        for d in ["tmp", "var", "run"] {
            c = mount_tmpfs(c, &g.join(d));
        }
        let etc = [self.tree.join("usr/etc"), self.tree.join("etc")]
            .into_iter()
            .find(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()));
        if let Some(etc) = etc {
            c = c.arg("--ro-bind").arg(etc).arg(g.join("etc"));
        }
        for p in &self.readonly {
            c = c.arg("--ro-bind").arg(p).arg(at(p));
        }
        for p in &self.writable {
            c = c.arg("--bind").arg(p).arg(at(p));
        }
        c = c.arg("--remount-ro").arg(g);
        Ok(c.arg("--ro-bind").arg(&self.chroot).arg(GUEST_CHROOT))
    }
}

/// The PATH of everything run in a sandbox: the system's, never the caller's (a pyenv or a
/// venv first on a user's PATH would change what the tests and the build see).
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories package code never sees: homes, and host secrets that a read-only root would
/// still show to code running as root (and that its logs could carry into published results).
pub const HIDDEN_DIRS: [&str; 8] = [
    "/home",
    "/root",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/pki/tls/private",
    "/etc/pki/CA/private",
    "/var/lib/sss",
    "/var/spool/cron",
];
pub const HIDDEN_FILES: [&str; 4] = [
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
];

/// Directories that stay visible to package code even when a home is one of them or lies
/// above them (`HOME=/`, `HOME=/var`, a home inside `/usr` or `/etc`): hiding them would hide
/// the system the sandbox runs. A home that is one of them is left visible.
const SYSTEM_DIRS: [&str; 24] = [
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/local",
    "/var",
    "/var/lib",
    "/var/cache",
    "/var/tmp",
];
/// Nothing inside these is a home to hide (the system's own files: `/usr/sbin` is a daemon
/// account's home).
const SYSTEM_TREES: [&str; 12] = [
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr",
];

/// Everything package code never sees: [`HIDDEN_DIRS`], and the homes that are not under
/// `/home` — the caller's (`$HOME`, the effective user's passwd entry, `SUDO_USER`'s), its
/// `PYENV_ROOT`, and those of the people and login accounts in `/etc/passwd` (uid 1000 and up,
/// or a login shell: service accounts such as `/var/lib/jenkins`). A home that is `/` or a
/// system directory (`/usr`, `/etc`, `/var`, `/opt`, ...; [`SYSTEM_DIRS`], [`SYSTEM_TREES`])
/// stays visible; any other is hidden even where a tool fci runs lies inside it, which
/// [`check_outside_homes`] then refuses.
pub fn hidden_dirs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = HIDDEN_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .collect();
    for home in private_homes() {
        let Ok(real) = home.canonicalize() else {
            continue;
        };
        if !real.is_dir() || !hideable_home(&real) {
            continue;
        }
        for d in [home, real] {
            if d.is_absolute() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    // One tmpfs for a home and the pyenv in it, and the log shows no more of them than that.
    let all = out.clone();
    out.retain(|d| !all.iter().any(|a| a != d && d.starts_with(a)));
    out
}

/// Whether a home may be hidden: neither a system directory, nor above one, nor inside the
/// system's trees.
fn hideable_home(dir: &Path) -> bool {
    !SYSTEM_DIRS.iter().any(|s| Path::new(s).starts_with(dir))
        && !SYSTEM_TREES.iter().any(|s| dir.starts_with(s))
}

/// The homes [`hidden_dirs`] considers, not yet checked.
fn private_homes() -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = ["HOME", "PYENV_ROOT"]
        .into_iter()
        .filter_map(std::env::var_os)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .collect();
    homes.extend(passwd_home(PasswdKey::Uid(crate::users::euid())));
    if let Some(user) = std::env::var_os("SUDO_USER") {
        homes.extend(passwd_home(PasswdKey::Name(user)));
    }
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        homes.extend(passwd.lines().filter_map(login_home));
    }
    homes
}

/// The home of a person or a login account in an `/etc/passwd` line.
fn login_home(line: &str) -> Option<PathBuf> {
    let f: Vec<&str> = line.split(':').collect();
    let [_, _, uid, _, _, home, shell] = f[..] else {
        return None;
    };
    let uid: u32 = uid.parse().ok()?;
    let no_login = ["nologin", "false", "true", "sync", "shutdown", "halt"];
    let shell_name = Path::new(shell).file_name().and_then(|n| n.to_str());
    let logs_in = !shell.is_empty() && !shell_name.is_some_and(|n| no_login.contains(&n));
    ((uid >= 1000 && uid != 65534) || logs_in).then(|| PathBuf::from(home))
}

enum PasswdKey {
    Uid(libc::uid_t),
    Name(OsString),
}

/// A user's home from the system's user database (NSS: LDAP and sssd users too).
fn passwd_home(key: PasswdKey) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the strings in `pw` point into `buf`.
    let rc = match key {
        PasswdKey::Uid(uid) => unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found)
        },
        PasswdKey::Name(name) => {
            let name = std::ffi::CString::new(name.as_bytes()).ok()?;
            unsafe {
                libc::getpwnam_r(
                    name.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut found,
                )
            }
        }
    };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpw*_r succeeded, so pw_dir is a NUL-terminated string inside `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

/// Files package code must never read wherever they lie (the pipeline's signing key): every
/// sandbox covers them with /dev/null, even where the host's /etc, /opt or /var/lib shows.
static SECRETS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Adds `file` (as given and as its real path) to what every sandbox covers.
pub fn keep_secret(file: &Path) {
    let mut all = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    for p in [Some(abs), file.canonicalize().ok()].into_iter().flatten() {
        if !all.contains(&p) {
            all.push(p);
        }
    }
}

fn secrets() -> Vec<PathBuf> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Sandbox {
    /// Covers the secrets (`keep_secret`) the sandbox would otherwise show: after every other
    /// mount, so that no bind shows one again; one inside an empty tmpfs is not there anyway.
    fn cover_secrets(&self, mut c: Cmd, tmpfs: &[PathBuf]) -> Cmd {
        let hidden = if self.hide_private {
            hidden_dirs()
        } else {
            Vec::new()
        };
        for s in secrets() {
            let rebound = self
                .readonly
                .iter()
                .chain(&self.writable)
                .any(|b| s.starts_with(b));
            let covered = tmpfs.iter().chain(&hidden).any(|t| s.starts_with(t));
            if covered && !rebound {
                continue;
            }
            c = match self.seen_as(&s) {
                Some(Seen::Other) => c.arg("--ro-bind").arg("/dev/null").arg(&s),
                _ => c,
            };
        }
        c
    }

    /// Wraps `inner` so that it runs inside the sandbox.
    pub fn wrap(&self, inner: &Cmd) -> Result<Cmd> {
        let bwrap = crate::tool::BWRAP.find()?;
        // Every tmpfs of the sandbox is scratch: capped at the scratch size, and measured.
        let size = self.limits.scratch.to_string();
        let mut tmpfs: Vec<PathBuf> = Vec::new();
        let mut mount_tmpfs = |c: Cmd, dest: &Path| {
            tmpfs.push(dest.to_path_buf());
            c.arg("--size").arg(&size).arg("--tmpfs").arg(dest)
        };
        let mut c = Cmd::new(&bwrap).args(["--ro-bind", "/", "/"]);
        c = with_dev(c, Path::new("/dev"));
        c = mount_proc(c, Path::new("/proc"));
        // bwrap's /dev is a tmpfs it cannot size: shared memory gets a sized one, and the rest
        // is read-only (its device nodes still work).
        c = mount_tmpfs(c, Path::new("/dev/shm"));
        c = c.args(["--remount-ro", "/dev"]);
        let seccomp = crate::seccomp::sandbox_program()?;
        c = c.arg("--seccomp").arg(seccomp_fd_arg(&seccomp));
        c.keep.push(seccomp);
        // Overlays first: everything hidden below must stay hidden even where an overlay's
        // lower layer is the host directory itself.
        for o in &self.overlays {
            c = c.arg("--ro-bind").arg(&o.mountpoint).arg(&o.target);
        }
        for d in ["/tmp", "/var/tmp", "/run"] {
            c = mount_tmpfs(c, Path::new(d));
        }
        if self.hide_private {
            c = self.cover_private(c, &mut mount_tmpfs);
        }
        for d in &self.hide {
            c = mount_tmpfs(c, d);
        }
        for p in &self.readonly {
            c = c.arg("--ro-bind").arg(p).arg(p);
        }
        for p in &self.writable {
            c = c.arg("--bind").arg(p).arg(p);
        }
        if let Some(g) = &self.guest {
            c = g.mount(c, &mut mount_tmpfs)?;
        }
        c = self.cover_secrets(c, &tmpfs);
        c = c.args(isolation_args(self.network, self.guest.is_some()));
        if self.network {
            // /run is hidden (it holds sockets); name resolution may live there.
            for d in [
                "/run/systemd/resolve",
                "/run/resolvconf",
                "/run/NetworkManager",
            ] {
                if Path::new(d).is_dir() {
                    c = c.arg("--ro-bind").arg(d).arg(d);
                }
            }
        }
        c = c.arg("--clearenv");
        for (k, v) in &self.env {
            c = c.arg("--setenv").arg(k).arg(v);
        }
        // bwrap itself is pid 1 in the sandbox, and its /proc/1/environ is readable there:
        // it starts with nothing of fci's environment either.
        c.clear_env = true;
        c.env = vec![("PATH".into(), SYSTEM_PATH.into())];
        if let Some(d) = &self.chdir {
            c = c.arg("--chdir").arg(d);
        }
        c = c.arg("--").arg(&inner.program).args(&inner.args);
        // Messages name what runs inside, not bwrap.
        c.name = Some(inner.shown());
        c.bounds = Some(crate::limits::Bounds {
            limits: self.limits,
            writable: self.writable.clone(),
            tmpfs,
        });
        if self.overlays.is_empty() {
            return Ok(c);
        }
        self.in_mount_namespace(c)
    }

    /// `c` (bwrap) started through unshare(1) in a private mount namespace of its own, where
    /// fci's `__sandbox` helper first mounts the sandbox's overlays, then execs bwrap.
    fn in_mount_namespace(&self, c: Cmd) -> Result<Cmd> {
        // unshare(1) gives a private mount namespace; the helper mounts, then execs bwrap.
        let unshare = crate::tool::UNSHARE.find()?;
        let me = std::env::current_exe()?;
        let mut outer = Cmd::new(unshare);
        outer.clear_env = true;
        outer.env = vec![("PATH".into(), SYSTEM_PATH.into())];
        outer.keep = c.keep.clone();
        outer.bounds = c.bounds.clone();
        outer.read_only_devices = c.read_only_devices;
        // Without root, a user namespace (mapped to root inside) is what allows the mounts.
        if !crate::users::is_root() {
            outer = outer.args(["--user", "--map-root-user"]);
        }
        let mut outer = outer
            .args(["--mount", "--propagation", "private", "--"])
            .arg(me)
            .arg("__sandbox");
        for o in &self.overlays {
            let mut lower = OsString::new();
            for (i, l) in o
                .layers
                .iter()
                .chain(std::iter::once(&o.target))
                .enumerate()
            {
                if i > 0 {
                    lower.push(":");
                }
                lower.push(l);
            }
            outer = outer.arg("--overlay").arg(lower).arg(&o.mountpoint);
        }
        outer.name = c.name.clone();
        Ok(outer.arg("--").arg(c.program).args(c.args))
    }

    /// Covers what the host keeps private (`hidden_dirs`, `HIDDEN_FILES`) with what fits
    /// each: an empty tmpfs over a directory, /dev/null over anything else.
    fn cover_private(&self, mut c: Cmd, mount_tmpfs: &mut impl FnMut(Cmd, &Path) -> Cmd) -> Cmd {
        // Each cover fits what the sandbox shows there, which an overlay may have changed:
        // a package that ships /etc/shadow as a directory, or /etc/ssh as a file, made bwrap
        // fail, and its failure was blamed on the host.
        for d in hidden_dirs() {
            c = match self.seen_as(&d) {
                Some(Seen::Dir) => mount_tmpfs(c, &d),
                Some(Seen::Other) => c.arg("--ro-bind").arg("/dev/null").arg(&d),
                // A link of the package's own masks the host's directory.
                Some(Seen::Link) | None => c,
            };
        }
        for f in HIDDEN_FILES {
            c = match self.seen_as(Path::new(f)) {
                Some(Seen::Dir) => mount_tmpfs(c, Path::new(f)),
                Some(Seen::Other) => c.args(["--ro-bind", "/dev/null", f]),
                Some(Seen::Link) | None => c,
            };
        }
        // Nothing of a home directory is bound back: tools fci runs in the sandbox must
        // live outside them (`check_outside_homes`).
        c
    }

    /// What the sandbox shows at `p`: for each component, the topmost overlay layer that has
    /// it (a whiteout hides it), else the host's file. A parent that is not a directory there
    /// (a package's `/etc/ssl` as a file or a link) masks the host's path below it: a `Link`,
    /// nothing to cover.
    fn seen_as(&self, p: &Path) -> Option<Seen> {
        use std::os::unix::fs::FileTypeExt;
        let kind = |m: std::fs::Metadata| {
            let t = m.file_type();
            if t.is_char_device() && std::os::unix::fs::MetadataExt::rdev(&m) == 0 {
                None
            } else if t.is_symlink() {
                Some(Seen::Link)
            } else if t.is_dir() {
                Some(Seen::Dir)
            } else {
                Some(Seen::Other)
            }
        };
        let over = self
            .overlays
            .iter()
            .filter_map(|o| p.strip_prefix(&o.target).ok().map(|rel| (o, rel)))
            .max_by_key(|(o, _)| o.target.as_os_str().len());
        let Some((o, rel)) = over else {
            return std::fs::symlink_metadata(p).ok().and_then(kind);
        };
        let at = |rel: &Path| {
            for layer in &o.layers {
                if let Ok(m) = std::fs::symlink_metadata(layer.join(rel)) {
                    return kind(m);
                }
            }
            std::fs::symlink_metadata(o.target.join(rel))
                .ok()
                .and_then(kind)
        };
        let parts: Vec<_> = rel.components().collect();
        let mut sofar = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            sofar.push(part);
            let seen = at(&sofar);
            if i + 1 == parts.len() {
                return seen;
            }
            match seen {
                Some(Seen::Dir) => continue,
                None => return None,
                Some(_) => return Some(Seen::Link),
            }
        }
        at(Path::new(""))
    }

    /// Starts the sandbox with nothing in it: a host that cannot build it (no user namespaces,
    /// a locked-down container) is told so, instead of a later step being blamed.
    pub fn check(&self, log: &mut crate::exec::Log) -> Result<()> {
        // Bounded like everything else: a sandbox that does not start within a minute is
        // the host's trouble, said as such.
        let cmd = self
            .wrap(&Cmd::new("true"))?
            .timeout(Some(std::time::Duration::from_secs(60)));
        log.capture_ok(&cmd, "the sandbox (bubblewrap) cannot start here")?;
        Ok(())
    }
}

/// A new /proc at `at` (the sandbox's, or its guest root's), its kernel knobs read-only: uid 0
/// needs no capability to write most sysctls (kernel.core_pattern runs a program as root on
/// the host), and bwrap covers them only where they look writable to it, which as root they
/// do not. Root's keyrings are shared with uid 0 outside a user namespace: the keyring calls
/// fail (a seccomp filter, see `seccomp::sandbox_program`), and /proc/keys lists nothing.
fn mount_proc(mut c: Cmd, at: &Path) -> Cmd {
    c = c.arg("--proc").arg(at);
    for p in PROC_COVERED {
        if Path::new(p).exists() {
            let rel = Path::new(p).strip_prefix("/proc").unwrap_or(Path::new(p));
            c = c.arg("--ro-bind").arg(p).arg(at.join(rel));
        }
    }
    c.arg("--ro-bind").arg("/dev/null").arg(at.join("keys"))
}

/// bwrap's `/dev` at `at`: a tmpfs with the host's null, zero, full, random, urandom and tty
/// bound in, which package code (uid 0) could chmod, chown or touch; so the command binds
/// them read-only first (see `devnodes`). Every sandbox's /dev is made here.
fn with_dev(mut c: Cmd, at: &Path) -> Cmd {
    c.read_only_devices = true;
    c.arg("--dev").arg(at)
}

/// A sandbox whose `/` is a tree being composed (what rpm-ostree does for a package's
/// scriptlets): the tree writable, its `usr/etc` as `/etc` (OSTree's layout), fresh tmpfs
/// `/tmp`, `/var` and `/run` (a deployment does not carry them), `files` (host path, path
/// inside, under `/run`) bound read-only, no network, no capabilities but those over the tree's
/// files when it is writable (`FILE_OWNERSHIP_CAPS`), dying with fci, within
/// `limits`. Nothing of the host is visible but `files` and bwrap's /dev and /proc. With
/// `usr_writable` false, `/usr` is read-only (`/etc` stays writable): for fci's own tools,
/// which write only in /etc, in a checkout whose /usr is hard links to repository objects.
pub fn rooted_in(
    tree: &Path,
    usr_writable: bool,
    files: &[(PathBuf, PathBuf)],
    limits: crate::limits::Limits,
    inner: &Cmd,
) -> Result<Cmd> {
    let bwrap = crate::tool::BWRAP.find()?;
    let size = limits.scratch.to_string();
    let mut c = Cmd::new(&bwrap).arg("--bind").arg(tree).arg("/");
    if !usr_writable {
        c = c.arg("--ro-bind").arg(tree.join("usr")).arg("/usr");
    }
    c = c.arg("--bind").arg(tree.join("usr/etc")).arg("/etc");
    c = with_dev(c, Path::new("/dev"));
    c = c.args(["--proc", "/proc"]);
    for p in PROC_COVERED {
        if Path::new(p).exists() {
            c = c.arg("--ro-bind").arg(p).arg(p);
        }
    }
    c = c.args(["--ro-bind", "/dev/null", "/proc/keys"]);
    let seccomp = crate::seccomp::sandbox_program()?;
    c = c.arg("--seccomp").arg(seccomp_fd_arg(&seccomp));
    c.keep.push(seccomp);
    let tmpfs: Vec<PathBuf> = ["/tmp", "/var", "/run"].iter().map(PathBuf::from).collect();
    for d in &tmpfs {
        c = c.arg("--size").arg(&size).arg("--tmpfs").arg(d);
    }
    for (from, to) in files {
        c = c.arg("--ro-bind").arg(from).arg(to);
    }
    c = c.args(isolation_args(false, false));
    if usr_writable {
        c = c.args(
            FILE_OWNERSHIP_CAPS
                .iter()
                .flat_map(|cap| ["--cap-add", cap]),
        );
    }
    c = c.args([
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
    ]);
    c = c.args(["--setenv", "LANG", "C.UTF-8", "--chdir", "/"]);
    c.clear_env = true;
    c.env = vec![("PATH".into(), SYSTEM_PATH.into())];
    c = c.arg("--").arg(&inner.program).args(&inner.args);
    c.name = Some(inner.shown());
    c.bounds = Some(crate::limits::Bounds {
        limits,
        writable: vec![tree.to_path_buf()],
        tmpfs,
    });
    Ok(c)
}

/// What a scriptlet in the tree may do to the tree's files, as root under rpm (rpm-ostree
/// runs scriptlets with all of root's capabilities): `chown`/`chgrp` after a `useradd`, `chmod`
/// of a file it does not own, `setcap`. Only over files it reaches: the tree (its only writable
/// mount beside tmpfs) and what is bound read-only; no capability to mount, trace, load a
/// module or reach the network.
const FILE_OWNERSHIP_CAPS: [&str; 5] = [
    "CAP_CHOWN",
    "CAP_FOWNER",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_SETFCAP",
];

/// Kernel interfaces under /proc that uid 0 could write without a capability.
const PROC_COVERED: [&str; 10] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/mtrr",
    "/proc/pressure",
    "/proc/acpi",
    "/proc/fs",
    "/proc/driver",
    "/proc/scsi",
];

fn seccomp_fd_arg(fd: &std::os::fd::OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd().to_string()
}

/// Namespaces and privileges of package code.
///
/// As root, bwrap's `--unshare-all` makes a user namespace mapping only uid 0: package code
/// then holds every capability over the sandbox's own mounts (it could unmount the covers
/// hiding `/etc/shadow`, or remount the host read-write) and sees every other user as
/// unmapped (an ACL for `bin` fails). So as root no user namespace is made: package code
/// keeps uid 0 and the host's users and groups, and loses every capability; bwrap always sets
/// no-new-privileges, so no setuid program gives them back. A user namespace it makes itself
/// cannot undo the covers: mounts inherited from a more privileged namespace are locked.
/// Without root, the user namespace is what lets bwrap work; capabilities are dropped there too.
///
/// A sandbox with a guest root (`chroot`: `fci integrate`) keeps one capability,
/// CAP_SYS_CHROOT, for its test commands to enter that root. That is safe: chroot(2) changes
/// only what the calling process sees as `/`, and every root it can reach (the guest root, or
/// back out of it: a chroot is no jail to a process that may call chroot again) is inside the
/// sandbox's own view, read-only but for the run's directories, with the covers over the
/// host's secrets in place; it gives no way to mount, to enter other namespaces, or to gain
/// another capability, and the seccomp filter still refuses new user namespaces (where a
/// process would hold every capability). Without root, the capability is one of bwrap's user
/// namespace, over the sandbox's own mounts only.
fn isolation_args(network: bool, chroot: bool) -> Vec<&'static str> {
    let root = crate::users::is_root();
    let mut a = if root {
        vec![
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
    } else {
        vec!["--unshare-all"]
    };
    if network && !root {
        a.push("--share-net");
    } else if !network && root {
        a.push("--unshare-net");
    }
    a.extend(["--cap-drop", "ALL"]);
    if chroot {
        a.extend(["--cap-add", "CAP_SYS_CHROOT"]);
    }
    a.extend(["--die-with-parent", "--new-session"]);
    a
}

/// A tool fci runs inside the sandbox (ansible-playbook, tmt) must be reachable there:
/// nothing under a directory package code never sees (a home: pyenv, pipx, `pip --user`),
/// neither the program, the file it links to, nor its `#!` interpreter. Package code is not
/// given the caller's home to make a tool found there work: the check fails instead, naming
/// the path (exit 3).
pub fn check_outside_homes(tool: &str, path: &Path) -> Result<(), FciError> {
    let dirs = hidden_dirs();
    let hidden = |p: &Path| dirs.iter().any(|d| p.starts_with(d));
    let mut chain = vec![path.to_path_buf()];
    if let Ok(real) = path.canonicalize() {
        chain.push(real);
    }
    let script = chain.last().cloned().unwrap_or_default();
    if let Some(interp) = shebang(&script) {
        chain.push(interp.clone());
        if let Ok(r) = interp.canonicalize() {
            chain.push(r);
        }
    }
    match chain.iter().find(|p| hidden(p)) {
        Some(p) => Err(FciError::Infra(format!(
            "{tool} ({path:?}) needs {p:?}, inside a directory the sandbox hides from package code; install {tool} outside home directories (a system package, or a venv such as setup.sh's /opt/fci/tmt made with /usr/bin/python3)"
        ))),
        None => Ok(()),
    }
}

/// The interpreter a script names on its `#!` line (`/usr/bin/env X` is not followed).
fn shebang(script: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?.lines().next()?;
    let interp = line.strip_prefix("#!")?.split_whitespace().next()?;
    Some(PathBuf::from(interp)).filter(|p| p.is_absolute())
}

/// The hidden `fci __sandbox` helper: mount the overlays, then become the given command.
pub fn helper(args: &[OsString]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a != "--overlay" {
            return Err(FciError::Usage(format!("__sandbox: unexpected argument {a:?}")).into());
        }
        let (Some(lower), Some(mnt)) = (it.next(), it.next()) else {
            return Err(
                FciError::Usage("__sandbox: --overlay needs LOWER MOUNTPOINT".into()).into(),
            );
        };
        // The subject's files were installed by rpm as root: its device nodes and setuid bits
        // mean nothing here.
        let mut opts = OsString::from("ro,nosuid,nodev,lowerdir=");
        opts.push(lower);
        let st = duct::cmd(
            "mount",
            [
                OsString::from("-t"),
                "overlay".into(),
                "fci-subject".into(),
                "-o".into(),
                opts,
                mnt.clone(),
            ],
        )
        .unchecked()
        .run()?;
        if !st.status.success() {
            return Err(FciError::Infra(format!(
                "cannot mount the subject overlay on {}",
                Path::new(mnt).display()
            ))
            .into());
        }
    }
    let rest: Vec<&OsString> = it.collect();
    let (prog, argv) = rest
        .split_first()
        .ok_or_else(|| FciError::Usage("__sandbox: no command".into()))?;
    let err = std::process::Command::new(prog).args(argv).exec();
    Err(FciError::Infra(format!("cannot exec {}: {err}", Path::new(prog).display())).into())
}

#[cfg(test)]
mod home_tests {
    use super::*;

    #[test]
    fn system_directories_and_their_parents_are_never_hidden_as_homes() {
        for d in [
            "/",
            "/usr",
            "/etc",
            "/var",
            "/opt",
            "/var/lib",
            "/usr/local",
            "/usr/sbin",
        ] {
            assert!(!hideable_home(Path::new(d)), "{d}");
        }
        for d in ["/etc/unbound", "/bin/x", "/usr/share/foo"] {
            assert!(!hideable_home(Path::new(d)), "{d}");
        }
        for d in [
            "/var/lib/jenkins",
            "/var/lib/gitlab-runner",
            "/opt/ci",
            "/srv/home",
        ] {
            assert!(hideable_home(Path::new(d)), "{d}");
        }
    }

    #[test]
    fn people_and_login_accounts_have_homes_to_hide() {
        let home = |l: &str| login_home(l).map(|p| p.display().to_string());
        assert_eq!(
            home("alice:x:1000:1000::/srv/alice:/bin/bash").as_deref(),
            Some("/srv/alice")
        );
        assert_eq!(
            home("jenkins:x:112:118:Jenkins:/var/lib/jenkins:/bin/bash").as_deref(),
            Some("/var/lib/jenkins")
        );
        assert_eq!(
            home("ci:x:1001:1001::/opt/ci:/usr/sbin/nologin").as_deref(),
            Some("/opt/ci")
        );
        assert_eq!(home("daemon:x:1:1::/usr/sbin:/usr/sbin/nologin"), None);
        assert_eq!(
            home("nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin"),
            None
        );
        assert_eq!(home("garbage"), None);
    }
}

#[cfg(test)]
mod guest_tests {
    use super::*;

    fn mounted(g: &Guest) -> Result<Vec<String>> {
        let mut none = |c: Cmd, d: &Path| c.arg("--tmpfs").arg(d);
        let c = g.mount(Cmd::new("bwrap"), &mut none)?;
        Ok(c.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    /// A tree like an OSTree checkout: usr with usr/etc, links into it, empty mount points.
    fn tree(t: &Path) -> PathBuf {
        let tree = t.join("tree");
        std::fs::create_dir_all(tree.join("usr/etc")).unwrap();
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        for d in ["proc", "var", "mnt"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
        std::os::unix::fs::symlink("var/home", tree.join("home")).unwrap();
        tree
    }

    /// The signing key is covered wherever the sandbox would show it: bound back inside a
    /// hidden directory (here: a readonly bind of its directory under /tmp) too.
    #[test]
    fn a_secret_is_covered_wherever_the_sandbox_shows_it() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("pipeline.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        keep_secret(&key);
        let shown = Sandbox {
            readonly: vec![t.path().to_path_buf()],
            ..Default::default()
        };
        let args = |sb: &Sandbox| -> String {
            let c = sb.wrap(&Cmd::new("true")).unwrap();
            c.args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let a = args(&shown);
        let cover = format!(
            "--ro-bind /dev/null {}",
            key.canonicalize().unwrap().display()
        );
        let bound = format!("--ro-bind {0} {0}", t.path().display());
        assert!(a.contains(&cover), "{a}");
        assert!(
            a.find(&cover) > a.find(&bound),
            "covered after the bind: {a}"
        );
        // Under /tmp's empty tmpfs it is not there to cover.
        assert!(!args(&Sandbox::default()).contains(&cover));
    }

    #[test]
    fn the_guest_root_shows_the_tree_its_etc_and_the_run_at_its_own_path() {
        let t = tempfile::tempdir().unwrap();
        let g = Guest {
            tree: tree(t.path()),
            writable: vec![PathBuf::from("/mnt/ws/run"), PathBuf::from("/srv/x")],
            readonly: Vec::new(),
            chroot: PathBuf::from("/usr/sbin/chroot"),
        };
        let a = mounted(&g).unwrap().join(" ");
        let tree = g.tree.display().to_string();
        assert!(
            a.contains(&format!("--ro-bind {tree}/usr /run/fci-guest/usr")),
            "{a}"
        );
        assert!(a.contains("--symlink usr/bin /run/fci-guest/bin"), "{a}");
        assert!(
            a.contains(&format!("--ro-bind {tree}/usr/etc /run/fci-guest/etc")),
            "{a}"
        );
        // The tree's empty /mnt gives way to a tmpfs, for the run's directory below it.
        assert!(a.contains("--tmpfs /run/fci-guest/mnt"), "{a}");
        assert!(
            a.contains("--bind /mnt/ws/run /run/fci-guest/mnt/ws/run"),
            "{a}"
        );
        assert!(a.contains("--bind /srv/x /run/fci-guest/srv/x"), "{a}");
        // The tree's own /proc and /var are never shown; the guest's are fresh.
        assert!(!a.contains(&format!("{tree}/proc")), "{a}");
        assert!(!a.contains(&format!("{tree}/var")), "{a}");
        assert!(a.contains("--proc /run/fci-guest/proc"), "{a}");
        assert!(
            a.contains("--ro-bind /dev/null /run/fci-guest/proc/keys"),
            "{a}"
        );
        assert!(
            a.contains("--remount-ro /run/fci-guest --ro-bind /usr/sbin/chroot /run/fci-chroot"),
            "{a}"
        );
    }

    #[test]
    fn a_run_inside_a_directory_the_tree_fills_is_the_hosts_trouble() {
        let t = tempfile::tempdir().unwrap();
        let g = Guest {
            tree: tree(t.path()),
            writable: vec![PathBuf::from("/usr/local/ws/run")],
            readonly: Vec::new(),
            chroot: PathBuf::from("/usr/sbin/chroot"),
        };
        let e = mounted(&g).unwrap_err();
        let why = e.to_string();
        assert!(
            matches!(e.downcast_ref(), Some(FciError::Infra(_))),
            "{why}"
        );
        assert!(
            why.contains("lies in /usr") && why.contains("--workspace"),
            "{why}"
        );
    }
}
