//! The files gating reads: a gating.yaml, results and waivers lists, each read up to its cap
//! (also a FIFO or a device, whose size says nothing) and within a time limit (a FIFO whose
//! writer never writes, a device that never answers), bad input naming the file.

use crate::error::FciError;
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

/// How long reading one input may take: a file is read at once; a pipe (`<(curl …)`) gets
/// this long to say everything.
pub const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A file given to gating or the report, up to its cap and within [`READ_WAIT`]. Opened
/// without blocking (a FIFO with no writer would block the open forever), and never a kernel
/// interface under /proc or /sys (reading /proc/kmsg drains the host's kernel log).
pub fn read(p: &Path) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |e: std::io::Error| FciError::input(p, format!("cannot read: {e}"));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
        .map_err(bad)?;
    let fs = rustix::fs::fstatfs(&f).map_err(|e| bad(e.into()))?;
    // PROC_SUPER_MAGIC, SYSFS_MAGIC: the kernel's state, no one's input.
    if matches!(fs.f_type as i64, 0x9fa0 | 0x6265_6572) {
        return Err(bad(std::io::Error::other("a kernel interface, not a file")).into());
    }
    let deadline = std::time::Instant::now() + READ_WAIT;
    let bytes = crate::caps::read_all(Patient { f, deadline }, crate::caps::REPORT_INPUT)
        .map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    Ok(String::from_utf8(bytes).map_err(|_| FciError::input(p, "cannot read: not UTF-8"))?)
}

/// The items of a JSON list file, each read by `from`; bad input naming the file otherwise.
pub fn items<T>(p: &Path, from: fn(&Value) -> Result<T, String>) -> Result<Vec<T>> {
    list(p)?
        .iter()
        .map(from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FciError::input(p, e).into())
}

fn list(p: &Path) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(&read(p)?) {
        Ok(Value::Array(items)) => Ok(items),
        // `GET /results` answers `{"data": [...], ...}`: take its data.
        Ok(Value::Object(o)) if o.get("data").is_some_and(Value::is_array) => {
            Ok(o["data"].as_array().cloned().unwrap_or_default())
        }
        Ok(_) => Err(FciError::input(p, "expected a JSON list").into()),
        Err(e) => Err(FciError::input(p, format!("not JSON: {e}")).into()),
    }
}

/// A non-blocking descriptor read as a blocking one until `deadline`: a read with nothing to
/// read yet waits for data (poll), never past the deadline.
struct Patient {
    f: std::fs::File,
    deadline: std::time::Instant,
}

impl std::io::Read for Patient {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.f.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = self
                        .deadline
                        .saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(std::io::Error::other(format!(
                            "nothing more to read within {}s (a pipe whose writer stalled, a device?)",
                            READ_WAIT.as_secs()
                        )));
                    }
                    use std::os::unix::io::AsRawFd;
                    let mut pfd = libc::pollfd {
                        fd: self.f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ms = left.as_millis().min(1000) as libc::c_int;
                    // SAFETY: poll on one descriptor this reader owns.
                    unsafe { libc::poll(&mut pfd, 1, ms) };
                }
                r => return r,
            }
        }
    }
}
