//! A storage backend that injects faults: errors, refusals, delays, or the
//! death of the process, at chosen calls.
//!
//! Every call to the wrapped backend gets a number in call order, one
//! sequence per [`Op`]; a [`Plan`] decides from the call what happens.

use cairn_engine::backend::{Backend, FileKind};
use cairn_engine::{Error, Result};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The kinds of backend call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Creating a file.
    Create,
    /// Removing a file.
    Remove,
    /// Reading a whole file or a range of one.
    Read,
    /// Replacing a file (the config or a WAL file, in a key rotation).
    Replace,
}

/// One call, as a [`Plan`] sees it.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// What kind of call.
    pub op: Op,
    /// Its number among calls of this kind, from 0.
    pub n: u64,
    /// The file's kind.
    pub kind: FileKind,
    /// The file's name.
    pub name: &'a str,
}

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// It goes through.
    Pass,
    /// It fails with this error and changes nothing.
    Fail(ErrorKind),
    /// It is refused, as by storage credentials that allow only creating new files.
    Refuse,
    /// It waits this long, then goes through.
    Delay(Duration),
    /// The process is killed with SIGKILL before the call.
    KillBefore,
    /// The process is killed with SIGKILL after the call has completed.
    KillAfter,
}

/// Decides the fate of each call.
pub type Plan = Box<dyn Fn(&Call<'_>) -> Fault + Send + Sync>;

/// A backend whose calls go through a [`Plan`].
pub struct Faulty<B> {
    inner: B,
    plan: Plan,
    counts: [AtomicU64; 4],
    /// Faults injected so far (every outcome but `Pass`).
    injected: AtomicU64,
}

impl<B: Backend> Faulty<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, plan: Plan) -> Self {
        Faulty {
            inner,
            plan,
            counts: Default::default(),
            injected: AtomicU64::new(0),
        }
    }

    /// How many faults the plan has injected.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// How many calls of `op` were made.
    pub fn calls(&self, op: Op) -> u64 {
        self.counts[op as usize].load(Ordering::SeqCst)
    }

    /// Runs `call` under the plan.
    fn run<T>(
        &self,
        op: Op,
        kind: FileKind,
        name: &str,
        call: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let n = self.counts[op as usize].fetch_add(1, Ordering::SeqCst);
        let fault = (self.plan)(&Call { op, n, kind, name });
        if fault != Fault::Pass {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        let what = || format!("injected fault: {op:?} of {} {name}", kind.name());
        match fault {
            Fault::Pass => call(),
            Fault::Fail(e) => Err(Error::io(what(), std::io::Error::from(e))),
            Fault::Refuse => Err(Error::Invalid(format!(
                "refused by storage: {op:?} of {name}"
            ))),
            Fault::Delay(d) => {
                std::thread::sleep(d);
                call()
            }
            Fault::KillBefore => kill_self(),
            Fault::KillAfter => {
                let _ = call();
                kill_self()
            }
        }
    }
}

/// Ends this process at once, as a power cut or `kill -9` would.
fn kill_self() -> ! {
    // SAFETY: sending a signal to our own process has no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}

impl<B: Backend> Backend for Faulty<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create_repository(&self) -> Result<()> {
        self.inner.create_repository()
    }
    fn exists(&self) -> Result<bool> {
        self.inner.exists()
    }
    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        self.run(Op::Create, kind, name, || {
            self.inner.create(kind, name, bytes)
        })
    }
    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        self.run(Op::Replace, kind, name, || {
            self.inner.replace(kind, name, bytes)
        })
    }
    fn retain_for(&self, days: u32) -> Result<()> {
        self.inner.retain_for(days)
    }
    fn can_retain(&self) -> bool {
        self.inner.can_retain()
    }
    fn keep(&self, kind: FileKind, names: &[String]) -> Result<()> {
        self.inner.keep(kind, names)
    }
    fn retained_until(&self, kind: FileKind, name: &str) -> Result<Option<std::time::SystemTime>> {
        self.inner.retained_until(kind, name)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.run(Op::Read, kind, name, || self.inner.read(kind, name))
    }
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.run(Op::Read, kind, name, || {
            self.inner.read_at(kind, name, offset, length)
        })
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
    fn modified(&self, kind: FileKind, name: &str) -> Result<std::time::SystemTime> {
        self.inner.modified(kind, name)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.run(Op::Remove, kind, name, || self.inner.remove(kind, name))
    }
}

/// A plan for storage that lets files be created and read, and refuses every
/// removal and every create of a name that already exists.
pub fn create_only(existing: impl Fn(FileKind, &str) -> bool + Send + Sync + 'static) -> Plan {
    Box::new(move |call| match call.op {
        Op::Remove | Op::Replace => Fault::Refuse,
        Op::Create if existing(call.kind, call.name) => Fault::Refuse,
        _ => Fault::Pass,
    })
}

/// A plan under which the `n`-th create or remove (counted together, from 0)
/// and every later one fails, as if the process had died there.
pub fn dies_at(n: u64) -> Plan {
    let seen = AtomicU64::new(0);
    Box::new(move |call| match call.op {
        Op::Read => Fault::Pass,
        _ if seen.fetch_add(1, Ordering::SeqCst) >= n => Fault::Fail(ErrorKind::BrokenPipe),
        _ => Fault::Pass,
    })
}
