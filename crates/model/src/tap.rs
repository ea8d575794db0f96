//! TAP options of a `vm` endpoint's switch port: who may open it (an
//! unprivileged VMM) and how many queues it has (multi-queue virtio-net).
//!
//! Contract: [`TapOptions::parse`] takes the three API fields as given
//! (`tap_owner`, `tap_group`, `tap_queues`) and returns `None` when none is
//! set; each bad value is a one-line error naming its field. Whether the
//! endpoint may have TAP options at all (only in a vm namespace) is the
//! engine's check, [`TapOptions::first_field`] names the field it reports.

use serde::{Deserialize, Serialize};

use crate::error::{InvalidValue, Result};

/// The most queues a TAP may be given (QEMU's `queues=` for virtio-net).
pub const MAX_TAP_QUEUES: u8 = 16;

/// How a vm endpoint's TAP is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapOptions {
    /// Only this uid (and root) may attach; `None`: root only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
    /// Only members of this gid (and root) may attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// 1..=16; above 1 the TAP is made `IFF_MULTI_QUEUE`.
    pub queues: u8,
}

impl Default for TapOptions {
    fn default() -> Self {
        Self {
            owner: None,
            group: None,
            queues: 1,
        }
    }
}

fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

fn id(field: &str, value: &str, what: &str) -> Result<u32> {
    match value.parse::<u32>() {
        // (uid_t)-1 means "no change" to the kernel: never an owner.
        Ok(v) if v != u32::MAX && value.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(InvalidValue::new(
            field,
            value,
            format!("a numeric {what} 0-4294967294"),
        )),
    }
}

impl TapOptions {
    /// The options from the API fields; `None` when none is given.
    pub fn parse(
        owner: Option<&str>,
        group: Option<&str>,
        queues: Option<&str>,
    ) -> Result<Option<Self>> {
        let (owner, group, queues) = (present(owner), present(group), present(queues));
        if owner.is_none() && group.is_none() && queues.is_none() {
            return Ok(None);
        }
        let queues = match queues {
            None => 1,
            Some(q) => match q.parse::<u8>() {
                Ok(n)
                    if (1..=MAX_TAP_QUEUES).contains(&n)
                        && q.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    n
                }
                _ => {
                    return Err(InvalidValue::new(
                        "tap_queues",
                        q,
                        format!("a number of queues 1-{MAX_TAP_QUEUES}"),
                    ))
                }
            },
        };
        Ok(Some(Self {
            owner: owner.map(|v| id("tap_owner", v, "uid")).transpose()?,
            group: group.map(|v| id("tap_group", v, "gid")).transpose()?,
            queues,
        }))
    }

    /// The first TAP field given, with its value (for the engine's "only
    /// for vm endpoints" error).
    pub fn first_field(
        owner: Option<&str>,
        group: Option<&str>,
        queues: Option<&str>,
    ) -> Option<(&'static str, String)> {
        [
            ("tap_owner", owner),
            ("tap_group", group),
            ("tap_queues", queues),
        ]
        .into_iter()
        .find_map(|(f, v)| present(v).map(|v| (f, v.to_owned())))
    }

    pub fn multi_queue(&self) -> bool {
        self.queues > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_the_bad_field() {
        assert_eq!(TapOptions::parse(None, Some(" "), None).unwrap(), None);
        let t = TapOptions::parse(Some("1000"), Some("100"), Some("4"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.owner, t.group, t.queues, t.multi_queue()),
            (Some(1000), Some(100), 4, true)
        );
        let t = TapOptions::parse(Some("0"), None, None).unwrap().unwrap();
        assert_eq!((t.queues, t.multi_queue()), (1, false));
        for (o, g, q, msg) in [
            (
                Some("-1"),
                None,
                None,
                "invalid tap_owner \"-1\": a numeric uid 0-4294967294",
            ),
            (
                Some("4294967295"),
                None,
                None,
                "invalid tap_owner \"4294967295\": a numeric uid 0-4294967294",
            ),
            (
                None,
                Some("wheel"),
                None,
                "invalid tap_group \"wheel\": a numeric gid 0-4294967294",
            ),
            (
                None,
                None,
                Some("0"),
                "invalid tap_queues \"0\": a number of queues 1-16",
            ),
            (
                None,
                None,
                Some("17"),
                "invalid tap_queues \"17\": a number of queues 1-16",
            ),
            (
                None,
                None,
                Some("+2"),
                "invalid tap_queues \"+2\": a number of queues 1-16",
            ),
        ] {
            assert_eq!(TapOptions::parse(o, g, q).unwrap_err().to_string(), msg);
        }
        assert_eq!(
            TapOptions::first_field(None, Some("5"), Some("2")),
            Some(("tap_group", "5".to_owned()))
        );
    }
}
