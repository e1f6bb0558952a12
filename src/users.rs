//! Who fci runs as, and whose files and directories it trusts: its own (the effective user's)
//! and root's. Another user's file in a shared place may have been planted there.

/// The effective user id fci runs as.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// fci runs as root.
pub fn is_root() -> bool {
    euid() == 0
}

/// A file or directory owned by `uid` is fci's to trust: the caller's or root's.
pub fn trusted_owner(uid: u32) -> bool {
    uid == euid() || uid == 0
}
