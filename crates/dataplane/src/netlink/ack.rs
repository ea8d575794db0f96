//! Collecting the kernel's answers to a burst of requests.
//!
//! Contract: [`Socket::transact`] sends one datagram holding the requests
//! numbered `first..first + n` and returns one [`Answer`] slot per request:
//! the first error the kernel sent for it wins over an ack, and replies
//! that carry other numbers (late answers to an earlier call) are ignored.
//! Data replies (a dump's or a GET's objects) go to a callback with the
//! request's index. How long to read is the caller's promise about its
//! requests ([`Collect`]): either every request asked for an ack (or is a
//! dump, which ends in `NLMSG_DONE`), so reading waits until each is
//! answered; or only some did (an nf_tables batch acks its last message),
//! so reading takes what is queued, which is everything: the kernel
//! handles a netlink request synchronously inside `sendmsg`.

use std::io;

use super::socket::Socket;
use super::wire::{
    messages, str_of, u32_of, Attrs, Header, NLMSGERR_ATTR_MSG, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED,
};

/// The kernel refused a request: positive errno, and its extended-ack
/// message when it gave one (`Unknown device type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub errno: i32,
    pub detail: Option<String>,
}

/// The kernel's answer to one request.
pub type Answer = Result<(), Nack>;

/// How long [`Socket::transact`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Every request carries `NLM_F_ACK` or is a dump: wait for all.
    EveryRequest,
    /// Only some are acked: take what the kernel queued during the send.
    Queued,
}

/// Reads an `NLMSG_ERROR` (errno 0 is an ack) or a dump's `NLMSG_DONE`;
/// `None` for any other message.
pub fn answer(hdr: &Header, payload: &[u8]) -> Option<Answer> {
    if hdr.ty != NLMSG_ERROR && hdr.ty != NLMSG_DONE {
        return None;
    }
    let code = payload.get(0..4).and_then(u32_of).unwrap_or(0) as i32;
    if code == 0 {
        return Some(Ok(()));
    }
    let mut detail = None;
    if hdr.flags & NLM_F_ACK_TLVS != 0 {
        // After the errno: the request's header, and its payload unless capped.
        let off = match hdr.ty {
            NLMSG_DONE => 4,
            _ if hdr.flags & NLM_F_CAPPED == 0 => {
                4 + payload
                    .get(4..8)
                    .and_then(u32_of)
                    .map_or(NLMSG_HDRLEN, |l| (l as usize + 3) & !3)
            }
            _ => 4 + NLMSG_HDRLEN,
        };
        detail = payload.get(off..).and_then(|tlvs| {
            Attrs(tlvs)
                .find(|(t, _)| *t == NLMSGERR_ATTR_MSG)
                .map(|(_, m)| str_of(m))
        });
    }
    Some(Err(Nack {
        errno: code.saturating_neg(),
        detail,
    }))
}

impl Socket {
    /// Sends `buf` (requests numbered `first..first + n`) and collects
    /// their answers; `on_data` gets every other reply with the index of
    /// its request. Socket failures are errors of the whole call.
    pub fn transact(
        &mut self,
        buf: &[u8],
        first: u32,
        n: usize,
        collect: Collect,
        mut on_data: impl FnMut(usize, Header, &[u8]),
    ) -> io::Result<Vec<Option<Answer>>> {
        self.send(buf)?;
        let mut answers: Vec<Option<Answer>> = vec![None; n];
        let mut open = n;
        while collect == Collect::Queued || open > 0 {
            let Some(len) = self.recv(collect == Collect::EveryRequest)? else {
                break;
            };
            for (hdr, payload) in messages(&self.rx[..len]) {
                let i = hdr.seq.wrapping_sub(first) as usize;
                if i >= n {
                    continue; // not ours: a late reply to an earlier call
                }
                match (answer(&hdr, payload), &answers[i]) {
                    (None, _) => on_data(i, hdr, payload),
                    (Some(a), None) => {
                        answers[i] = Some(a);
                        open -= 1;
                    }
                    (Some(Err(e)), Some(Ok(()))) => answers[i] = Some(Err(e)),
                    (Some(_), Some(_)) => {}
                }
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::Writer;

    fn error_msg(errno: i32, flags: u16, tail: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::default();
        let m = w.begin(NLMSG_ERROR, flags, 5);
        w.raw(&(-errno).to_ne_bytes());
        let req = w.begin(16, 0, 5); // the request's header, echoed
        w.end(req);
        tail(&mut w);
        w.end(m);
        w.buf
    }

    #[test]
    fn acks_errors_and_extended_messages() {
        let ack = error_msg(0, 0, |_| {});
        let (h, p) = messages(&ack).next().unwrap();
        assert_eq!(answer(&h, p), Some(Ok(())));
        let nack = error_msg(libc::EOPNOTSUPP, NLM_F_CAPPED | NLM_F_ACK_TLVS, |w| {
            w.str(NLMSGERR_ATTR_MSG, "Unknown device type");
        });
        let (h, p) = messages(&nack).next().unwrap();
        let want = Nack {
            errno: libc::EOPNOTSUPP,
            detail: Some("Unknown device type".into()),
        };
        assert_eq!(answer(&h, p), Some(Err(want)));
        let data = Header {
            ty: 16,
            flags: 0,
            seq: 5,
        };
        assert_eq!(answer(&data, &[]), None);
    }
}
