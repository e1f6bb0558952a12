//! The seccomp programs fci puts around code it does not trust: the one bwrap loads for
//! package code (`--seccomp FD`), and the one `ostree admin deploy` runs under. Built with
//! libseccomp, which knows every architecture's system call numbers and argument layout, for
//! the kernel's own architecture and each one whose calls it also takes (a 32-bit call on a
//! 64-bit kernel is filtered like a 64-bit one); a call of any other architecture kills its
//! caller (libseccomp's default for a bad architecture). Where no such filter can be built,
//! fci refuses (ERROR) rather than run the code unfiltered.

use crate::error::FciError;
use anyhow::Result;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use std::os::fd::{FromRawFd, OwnedFd};

/// A call a program refuses: its name, the errno it fails with, and when only some calls are:
/// (argument index, mask, value) for the calls whose argument, masked, is that value.
type Deny = (&'static str, i32, Option<(u32, u64, u64)>);

/// The architectures a program covers where fci runs as `target` (`std::env::consts::ARCH`):
/// every one that kernel may take calls of (its compat ABIs: i386 and x32 beside x86_64, arm
/// beside aarch64, ...). None: a host fci cannot filter for.
pub fn covered(target: &str) -> Option<&'static [ScmpArch]> {
    use ScmpArch::*;
    Some(match target {
        "x86_64" | "x86" => &[X8664, X86, X32],
        "aarch64" | "arm" => &[Aarch64, Arm],
        // No 32-bit little-endian PowerPC ABI exists.
        "powerpc64" if cfg!(target_endian = "little") => &[Ppc64Le],
        "powerpc64" | "powerpc" => &[Ppc64, Ppc],
        "s390x" => &[S390X, S390],
        "riscv64" => &[Riscv64],
        _ => return None,
    })
}

/// Package code's calls that fail: the kernel keyring calls and a new user namespace with
/// EPERM (root's keyrings are shared with uid 0 outside a user namespace; whoever makes a user
/// namespace holds every capability over what it mounts there, which hid files from the
/// scratch watcher and reached the sandbox's own cgroup), io_uring with ENOSYS as a kernel
/// without it would (files a ring holds, registered, then closed and deleted, are in no /proc
/// listing, so the scratch watcher could not count them: a build held 1 GiB past a 64 MiB
/// limit that way). clone and unshare are refused only with CLONE_NEWUSER; clone3, whose flags
/// are behind a pointer, is ENOSYS (libc then uses clone, as on a kernel without it).
fn sandbox_denied(target: &str) -> Vec<Deny> {
    const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;
    // s390's clone takes its stack first and its flags second.
    let clone_flags = if target.starts_with("s390") { 1 } else { 0 };
    let (eperm, enosys) = (libc::EPERM, libc::ENOSYS);
    vec![
        ("add_key", eperm, None),
        ("request_key", eperm, None),
        ("keyctl", eperm, None),
        ("io_uring_setup", enosys, None),
        ("io_uring_enter", enosys, None),
        ("io_uring_register", enosys, None),
        ("clone", eperm, Some((clone_flags, NEWUSER, NEWUSER))),
        ("unshare", eperm, Some((0, NEWUSER, NEWUSER))),
        ("clone3", enosys, None),
    ]
}

/// `ioctl(FIFREEZE)` and `ioctl(FITHAW)` fail with EPERM (the request compared as the kernel
/// reads it, an unsigned int: higher bits do not hide it).
fn fsfreeze_denied() -> Vec<Deny> {
    const FIFREEZE: u64 = 0xc004_5877; // _IOWR('X', 119, int), alike on every architecture
    const FITHAW: u64 = 0xc004_5878;
    [FIFREEZE, FITHAW]
        .map(|req| ("ioctl", libc::EPERM, Some((1, 0xffff_ffff, req))))
        .to_vec()
}

/// The filter that allows everything but `denied`, for every architecture `covered` names.
fn filter(target: &str, denied: &[Deny]) -> Result<ScmpFilterContext, String> {
    let arches = covered(target).ok_or(format!("no architecture list for {target}"))?;
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(|e| e.to_string())?;
    for arch in arches {
        if !ctx.is_arch_present(*arch).map_err(|e| e.to_string())? {
            ctx.add_arch(*arch)
                .map_err(|e| format!("architecture {arch:?}: {e}"))?;
        }
    }
    for (name, errno, when) in denied {
        let call = libseccomp::ScmpSyscall::from_name(name).map_err(|e| format!("{name}: {e}"))?;
        let cmp: Vec<ScmpArgCompare> = when
            .iter()
            .map(|(arg, mask, value)| {
                ScmpArgCompare::new(*arg, ScmpCompareOp::MaskedEqual(*mask), *value)
            })
            .collect();
        ctx.add_rule_conditional(ScmpAction::Errno(*errno), call, &cmp)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(ctx)
}

/// The filter as the BPF program the kernel loads, as libseccomp exports it.
fn export(what: &str, denied: &[Deny]) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let refuse = |why: String| {
        FciError::Infra(format!(
            "{what} cannot run under a seccomp filter on this host ({why}): fci does not run it unfiltered"
        ))
    };
    let ctx = filter(std::env::consts::ARCH, denied).map_err(refuse)?;
    let mut f = memfd(libc::MFD_CLOEXEC).map_err(|e| refuse(e.to_string()))?;
    ctx.export_bpf(&f).map_err(|e| refuse(e.to_string()))?;
    let mut bytes = Vec::new();
    f.rewind()?;
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn memfd(flags: libc::c_uint) -> std::io::Result<std::fs::File> {
    // SAFETY: memfd_create with a valid C string; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"fci-seccomp".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The program bwrap loads for package code (`--seccomp FD`; see `sandbox_denied`), in a
/// memfd of its own, inheritable (bwrap reads it by number, to its end). Built once a process
/// (a third of a millisecond): each sandbox gets a copy.
pub fn sandbox_program() -> Result<std::sync::Arc<OwnedFd>> {
    use std::io::{Seek, Write};
    static PROGRAM: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    let program = PROGRAM.get_or_init(|| {
        export("package code", &sandbox_denied(std::env::consts::ARCH)).map_err(|e| e.to_string())
    });
    let program = program.as_ref().map_err(|e| FciError::Infra(e.clone()))?;
    let mut f = memfd(0)?;
    f.write_all(program)?;
    f.rewind()?;
    Ok(std::sync::Arc::new(OwnedFd::from(f)))
}

/// The program `exec` loads between fork and exec (see `load`) for a command whose freezes
/// of a filesystem must fail (see `fsfreeze_denied`). Built before the fork.
pub fn no_fsfreeze_program() -> Result<Vec<libc::sock_filter>> {
    Ok(instructions(&export(
        "ostree's deploy",
        &fsfreeze_denied(),
    )?))
}

/// A BPF program's instructions from its bytes as exported.
fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect()
}

/// Loads `prog` into the calling process, with no-new-privileges (which the kernel requires
/// of a process without CAP_SYS_ADMIN). Async-signal-safe: it runs between fork and exec.
///
/// # Safety
/// Only prctl is called; `prog` is a program `no_fsfreeze_program` built.
pub unsafe fn load(prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        || libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `calls` in a forked child under `prog`, returning what each returned (its errno
    /// when it failed, as a negative number; 0 for a success). Only system calls in the child.
    fn under(prog: &[libc::sock_filter], calls: &[fn() -> i64]) -> Vec<i64> {
        let (mut r, w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: the child makes system calls only, then _exits.
        match unsafe { libc::fork() } {
            0 => unsafe {
                if load(prog).is_err() {
                    libc::_exit(2);
                }
                for c in calls {
                    let v = c();
                    libc::write(w.as_raw_fd(), (&v as *const i64).cast(), 8);
                }
                libc::_exit(0);
            },
            pid => {
                drop(w);
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut r, &mut bytes).unwrap();
                let out: Vec<i64> = bytes
                    .chunks_exact(8)
                    .map(|b| i64::from_ne_bytes(b.try_into().unwrap()))
                    .collect();
                assert_eq!(out.len(), calls.len());
                out
            }
        }
    }

    /// A system call's result: 0, or minus its errno.
    fn rc(r: libc::c_long) -> i64 {
        if r < 0 {
            // SAFETY: reads this thread's errno.
            -i64::from(unsafe { *libc::__errno_location() })
        } else {
            0
        }
    }

    /// The sandbox's program as loaded instructions (as bwrap reads it from the descriptor).
    fn sandbox_instructions() -> Vec<libc::sock_filter> {
        let fd = sandbox_program().unwrap();
        let mut f = std::fs::File::from(fd.try_clone().unwrap());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        instructions(&bytes)
    }

    #[test]
    fn the_filters_name_every_architecture_of_the_host() {
        let target = std::env::consts::ARCH;
        let arches = covered(target).expect("this host is covered");
        for denied in [sandbox_denied(target), fsfreeze_denied()] {
            let ctx = filter(target, &denied).unwrap();
            for a in arches {
                assert!(ctx.is_arch_present(*a).unwrap(), "{a:?} missing");
            }
            assert!(ctx.is_arch_present(ScmpArch::native()).unwrap());
        }
        assert_eq!(
            covered("x86_64").unwrap(),
            [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]
        );
        assert!(covered("aarch64").unwrap().contains(&ScmpArch::Arm));
        assert!(covered("s390x").unwrap().contains(&ScmpArch::S390));
        // s390's clone flags are its second argument.
        let clone = |t| sandbox_denied(t).into_iter().find(|d| d.0 == "clone");
        assert_eq!(clone("s390x").unwrap().2.unwrap().0, 1);
        assert_eq!(clone("x86_64").unwrap().2.unwrap().0, 0);
    }

    #[test]
    fn a_host_without_a_filter_refuses_with_a_reason() {
        let e = filter("sparc64", &fsfreeze_denied()).err().unwrap();
        assert!(e.contains("sparc64"), "{e}");
        // Any filter that cannot be built is an ERROR (exit 3) in one line saying why.
        let e = export("package code", &[("no_such_call", libc::EPERM, None)])
            .err()
            .unwrap();
        let e = e.downcast::<FciError>().unwrap();
        assert!(matches!(e, FciError::Infra(_)), "{e:?}");
        let line = e.to_string();
        assert!(
            line.contains("no_such_call") && !line.contains('\n'),
            "{line}"
        );
        assert!(line.contains("package code cannot run"), "{line}");
    }

    #[test]
    fn the_sandbox_program_refuses_keyrings_io_uring_and_user_namespaces() {
        let got = under(
            &sandbox_instructions(),
            &[
                // SAFETY (each): plain system calls whose pointers are null or none.
                || rc(unsafe { libc::syscall(libc::SYS_keyctl, 0, -4, 0) }),
                || rc(unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, -4) }),
                || rc(unsafe { libc::syscall(libc::SYS_request_key, 0, 0, 0, -4) }),
                || rc(unsafe { libc::syscall(libc::SYS_io_uring_setup, 8, 0) }),
                || rc(unsafe { libc::syscall(libc::SYS_clone3, 0, 0) }),
                || rc(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) }),
                // CLONE_NEWUSER with CLONE_FS is EINVAL to the kernel: never a new process.
                || {
                    let flags = libc::CLONE_NEWUSER | libc::CLONE_FS;
                    rc(unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) })
                },
                // Allowed: an unshare of nothing, a clone's flags without CLONE_NEWUSER (and
                // CLONE_SIGHAND without CLONE_VM: EINVAL, no new process either).
                || rc(unsafe { libc::syscall(libc::SYS_unshare, 0) }),
                || rc(unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_SIGHAND, 0, 0, 0, 0) }),
            ],
        );
        let (eperm, enosys) = (-i64::from(libc::EPERM), -i64::from(libc::ENOSYS));
        let einval = -i64::from(libc::EINVAL);
        assert_eq!(
            got,
            [eperm, eperm, eperm, enosys, enosys, eperm, eperm, 0, einval]
        );
    }

    /// The 32-bit calls of an x86_64 host: i386's (`int 0x80`) and x32's.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_sandbox_program_refuses_a_32_bit_keyring_call() {
        /// An i386 system call (its number and three arguments): its raw result.
        fn int80(nr: i64, a: i64, b: i64, c: i64) -> i64 {
            let r: i64;
            // SAFETY: a system call through the i386 entry; no memory is passed.
            unsafe {
                // rbx is LLVM's own: swapped in and back out around the call.
                std::arch::asm!("xchg rbx, {a}", "int 0x80", "xchg rbx, {a}", a = inout(reg) a => _,
                    inlateout("rax") nr => r, in("rcx") b, in("rdx") c, options(nostack));
            }
            r
        }
        // The host takes i386 calls at all (getpid, 20): else there is nothing to refuse.
        let pid = int80(20, 0, 0, 0);
        let got = under(
            &sandbox_instructions(),
            &[
                || int80(20, 0, 0, 0),
                || int80(288, 0, -4, 0), // keyctl(KEYCTL_GET_KEYRING_ID, user keyring)
                || int80(286, 0, 0, 0),  // add_key
                || rc(unsafe { libc::syscall(0x4000_0000 | libc::SYS_keyctl, 0, -4, 0) }),
            ],
        );
        let eperm = -i64::from(libc::EPERM);
        if pid > 0 {
            assert!(got[0] > 0, "getpid through int 0x80: {}", got[0]);
            assert_eq!(got[1..3], [eperm, eperm]);
        }
        assert_eq!(got[3], eperm, "x32 keyctl");
    }

    #[test]
    fn the_deploy_program_refuses_freezes_only() {
        let got = under(
            &no_fsfreeze_program().unwrap(),
            &[
                // On no descriptor: a freeze the filter let through fails with EBADF.
                || rc(unsafe { libc::syscall(libc::SYS_ioctl, -1, 0xc004_5877u64) }),
                || rc(unsafe { libc::syscall(libc::SYS_ioctl, -1, 0xc004_5878u64) }),
                // The kernel reads the request as an unsigned int: higher bits hide nothing.
                || rc(unsafe { libc::syscall(libc::SYS_ioctl, -1, 0x1_c004_5877u64) }),
                || rc(unsafe { libc::syscall(libc::SYS_ioctl, -1, libc::FIONREAD) }),
                || rc(unsafe { libc::syscall(libc::SYS_keyctl, 0, -4, 0) }),
            ],
        );
        let (eperm, ebadf) = (-i64::from(libc::EPERM), -i64::from(libc::EBADF));
        assert_eq!(got, [eperm, eperm, eperm, ebadf, 0]);
    }
}
