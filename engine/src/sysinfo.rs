//! Host, user and group names from the operating system.

use std::collections::HashMap;
use std::ffi::CStr;

/// This machine's host name, or an empty string if it has none.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The name of the user running this process.
pub fn username() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// The process's effective user and group IDs.
pub fn ids() -> (u32, u32) {
    // SAFETY: neither call has preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Runs one of the re-entrant `getpw*_r` / `getgr*_r` look-ups, growing the
/// buffer while the C library asks for more, and extracts the answer with
/// `read` while the buffer it points into is still alive.
fn lookup<T, R>(
    call: impl Fn(*mut T, *mut libc::c_char, usize, *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> Option<R> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `T` is a plain C struct (passwd or group) for which all-zero is valid.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        match call(&mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut result) {
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            0 if !result.is_null() => return Some(read(&entry)),
            _ => return None,
        }
    }
}

/// A C string owned by a look-up's buffer, copied out.
fn owned(p: *const libc::c_char) -> String {
    // SAFETY: callers pass a NUL-terminated string that a successful look-up filled in.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The login name of `uid`, if the system knows it.
pub fn user_name(uid: u32) -> Option<String> {
    // SAFETY: the pointers come from `lookup` and are valid for the call.
    lookup(
        |e, b, l, r| unsafe { libc::getpwuid_r(uid, e, b, l, r) },
        |p: &libc::passwd| owned(p.pw_name),
    )
}

/// The name of group `gid`, if the system knows it.
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: the pointers come from `lookup` and are valid for the call.
    lookup(
        |e, b, l, r| unsafe { libc::getgrgid_r(gid, e, b, l, r) },
        |g: &libc::group| owned(g.gr_name),
    )
}

/// The ID of the user named `name`, if the system knows it.
pub fn uid_by_name(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is NUL-terminated; the other pointers come from `lookup`.
    lookup(
        |e, b, l, r| unsafe { libc::getpwnam_r(c.as_ptr(), e, b, l, r) },
        |p: &libc::passwd| p.pw_uid,
    )
}

/// The ID of the group named `name`, if the system knows it.
pub fn gid_by_name(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is NUL-terminated; the other pointers come from `lookup`.
    lookup(
        |e, b, l, r| unsafe { libc::getgrnam_r(c.as_ptr(), e, b, l, r) },
        |g: &libc::group| g.gr_gid,
    )
}

/// Caches user and group name look-ups for one run.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
    uids: HashMap<String, Option<u32>>,
    gids: HashMap<String, Option<u32>>,
}

impl NameCache {
    /// The user name of `uid`, empty when unknown.
    pub fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_default())
            .clone()
    }

    /// The local ID for a recorded owner: by name when this system knows the
    /// name, else the recorded number.
    pub fn local_uid(&mut self, name: &str, recorded: u32) -> u32 {
        if name.is_empty() {
            return recorded;
        }
        self.uids
            .entry(name.to_string())
            .or_insert_with(|| uid_by_name(name))
            .unwrap_or(recorded)
    }

    /// The local ID for a recorded group: by name, else the recorded number.
    pub fn local_gid(&mut self, name: &str, recorded: u32) -> u32 {
        if name.is_empty() {
            return recorded;
        }
        self.gids
            .entry(name.to_string())
            .or_insert_with(|| gid_by_name(name))
            .unwrap_or(recorded)
    }

    /// The group name of `gid`, empty when unknown.
    pub fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| group_name(gid).unwrap_or_default())
            .clone()
    }
}
