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

/// The effective user's login name, from the password database (what `$USER` should say,
/// for cron jobs and services that set none), if it has one.
pub fn name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: the buffers outlive the call; getpwuid_r writes only within them.
    let rc = unsafe { libc::getpwuid_r(euid(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}
