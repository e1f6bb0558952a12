//! The host's device nodes as package code sees them: read-only mounts of them.
//!
//! bwrap's `--dev /dev` binds the host's own /dev/null, zero, full, random, urandom and tty
//! into the sandbox, writable. Package code runs as real uid 0 (fci runs as root, without a
//! user namespace: see `sandbox::isolation_args`), and the node's owner may change its
//! metadata: a %post's `chmod 0660 /dev/full` or `touch /dev/null` changed the host's.
//! bwrap's own `--remount-ro /dev/null` adds `nodev` (nothing can be written to the device
//! any more), and it has no read-only device bind. So the command's own mount namespace
//! (made between fork and exec) binds each node onto itself read-only, device access kept;
//! bwrap's binds copy the mount and its read-only flag. A read-only mount refuses
//! chmod, chown and utimes on the node (EROFS); reads and writes go to the device.

/// The nodes bwrap's `--dev` binds from the host (bwrap 0.8's `devnodes`).
const NODES: [&std::ffi::CStr; 6] = [
    c"/dev/null",
    c"/dev/zero",
    c"/dev/full",
    c"/dev/random",
    c"/dev/urandom",
    c"/dev/tty",
];

/// Moves the calling process into a mount namespace of its own where the host's device nodes
/// are read-only mounts. Runs between fork and exec: system calls on constants only.
///
/// # Safety
/// Async-signal-safe, allocation-free; meant for a forked child before it execs. Needs root
/// (CAP_SYS_ADMIN); without it there is nothing to protect (package code then runs in a user
/// namespace, as a uid that owns no host device node).
pub unsafe fn read_only_in_own_namespace() -> std::io::Result<()> {
    let fail = || Err(std::io::Error::last_os_error());
    if libc::unshare(libc::CLONE_NEWNS) != 0 {
        return fail();
    }
    // First: nothing mounted here may reach the namespace it was copied from (fci's is
    // already a slave of the host's; a caller of the library's may share the host's).
    let none = std::ptr::null();
    if libc::mount(
        none,
        c"/".as_ptr(),
        none,
        libc::MS_REC | libc::MS_SLAVE,
        none.cast(),
    ) != 0
    {
        return fail();
    }
    for node in NODES {
        if libc::mount(
            node.as_ptr(),
            node.as_ptr(),
            none,
            libc::MS_BIND,
            none.cast(),
        ) != 0
        {
            // A host without the node (a container's /dev without a tty): bwrap says so.
            if *libc::__errno_location() == libc::ENOENT {
                continue;
            }
            return fail();
        }
        // Not MS_NODEV: the device itself stays usable.
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID;
        if libc::mount(
            none,
            node.as_ptr(),
            none,
            flags | libc::MS_NOEXEC,
            none.cast(),
        ) != 0
        {
            return fail();
        }
    }
    Ok(())
}
