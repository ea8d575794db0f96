//! Namespaces left by test processes that died without unwinding (killed
//! by a timeout, SIGKILL, a hung run stopped by hand): the guards that
//! remove a test's namespaces never ran, so the next test process removes
//! them, once, before it makes its first one.
//!
//! Every test name carries the creating process's pid, right after a
//! letter or a `-`: `bht-<tag>-<pid>-<n>` ([`super::unique_name`]),
//! `bht-<tag><pid>-<n>` (the test kit's runtime-style and daemon
//! namespaces, whose tags end in a letter) and `bht<pid><kind><n>-…` (the
//! engine's pin prefixes in tests). A name is stale when that process is
//! gone.

use std::sync::Once;

use crate::netns;

/// Removes, once per process, the `bht` namespaces of dead processes.
pub fn sweep_once() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        for name in netns::list("bht").unwrap_or_default() {
            if owner(&name).is_some_and(|pid| !alive(pid)) {
                let _ = netns::delete(&name);
            }
        }
    });
}

/// The pid `name` carries, or `None` when it is not a test name.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("bht")?;
    let digits: &str = if let Some(tail) = rest.strip_prefix('-') {
        // bht-<tag><pid>-<n> or bht-<tag>-<pid>-<n>: the digits just
        // before the last '-'.
        let (head, n) = tail.rsplit_once('-')?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let start = head.rfind(|c: char| !c.is_ascii_digit())? + 1;
        &head[start..]
    } else {
        // bht<pid><kind><n>-…: the leading digits.
        let end = rest.find(|c: char| !c.is_ascii_digit())?;
        &rest[..end]
    };
    digits.parse().ok().filter(|p| *p > 0)
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_read_from_every_test_name_form() {
        assert_eq!(owner("bht-dhl2b-out-22556-11"), Some(22556));
        assert_eq!(owner("bht-d4242-0"), Some(4242));
        assert_eq!(owner("bht-cna4242-7"), Some(4242));
        assert_eq!(owner("bht31337t2-nsa"), Some(31337));
        assert_eq!(owner("bhtup0x"), None);
        assert_eq!(owner("bht-nodigits-x"), None);
        assert_eq!(owner("bht-7-1"), None);
        assert_eq!(owner("other-123-4"), None);
    }

    #[test]
    fn this_process_keeps_its_own_names() {
        let me = std::process::id();
        for name in [
            super::super::unique_name("x"),
            format!("bht-cna{me}-3"),
            format!("bht{me}t1-a"),
        ] {
            assert_eq!(owner(&name), Some(me), "{name}");
            assert!(alive(me));
        }
    }
}
