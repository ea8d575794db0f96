//! One request on a plain blocking socket: [`Client::execute_blocking`],
//! for callers that make one call per process (the `bulkhead` CLI, the
//! CNI plugin), where an async runtime and an HTTP stack would be most of
//! the call: starting them, and the HTTP parser's CPU feature probe (each
//! `cpuid` traps to the hypervisor in a VM), cost more than the daemon's
//! answer to a GET.
//!
//! Contract: the same request bytes as [`Client::execute`] (method, path,
//! `host`, a JSON `content-type` when there is a body) plus
//! `content-length` and `connection: close`; the answer is read to the
//! end of its body and decoded exactly as [`Client::execute`] decodes it.
//! The reader understands what an HTTP/1.1 server may send for a response
//! to such a request: a `content-length` body, a chunked body, or a body
//! ended by the server closing the connection; a response it cannot read
//! is a [`ClientError::Malformed`] naming what was wrong.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use crate::client::{finish, Client, ClientError};
use crate::command::{Command, Response};
use crate::route::encode_request;

/// A response's status and body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Client {
    /// [`Client::execute`] without a runtime: one blocking exchange.
    pub fn execute_blocking(&self, cmd: &Command) -> Result<Response, ClientError> {
        let encoded = encode_request(cmd).map_err(ClientError::Encode)?;
        let mut stream =
            UnixStream::connect(self.socket()).map_err(|error| ClientError::Connect {
                socket: self.socket().to_path_buf(),
                error,
            })?;
        let body = encoded.body.unwrap_or_default();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n",
            encoded.method,
            encoded.path,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("content-type: application/json\r\n");
        }
        head.push_str("\r\n");
        let mut raw = Vec::with_capacity(4096);
        let lost = |error| ClientError::Lost {
            socket: self.socket().to_path_buf(),
            error,
        };
        let mut request = head.into_bytes();
        request.extend_from_slice(&body);
        stream.write_all(&request).map_err(lost)?;
        stream.read_to_end(&mut raw).map_err(lost)?;
        let answer = parse(&raw).map_err(ClientError::Malformed)?;
        finish(cmd, answer.status, &answer.body)
    }
}

/// Reads one whole HTTP/1.1 response (the connection closed after it).
pub(crate) fn parse(raw: &[u8]) -> Result<Answer, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("the response ends inside its head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the response head is not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("status line {status_line:?} is not HTTP/1.x NNN"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line {line:?} has no ':'"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("content-length {value:?} is not a number"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| format!("the body ends after {} of its {n} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

/// A chunked body's bytes.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("a chunk's size line is cut off")?;
        let line =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| "a chunk size is not UTF-8")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| format!("chunk size {hex:?} is not hexadecimal"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| format!("a chunk ends after {} of its {size} bytes", rest.len()))?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("a chunk is not followed by CRLF")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            body: body.to_vec(),
        }
    }

    #[test]
    fn reads_a_content_length_body_and_ignores_what_follows() {
        let raw = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse(raw), Ok(answer(201, b"{\"a\":1}")));
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA";
        assert_eq!(parse(raw), Ok(answer(200, b"ok")));
    }

    #[test]
    fn reads_a_chunked_body_and_a_close_delimited_one() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse(raw), Ok(answer(200, b"{\"a\":1}")));
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse(raw), Ok(answer(404, b"nope")));
        let raw = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(parse(raw), Ok(answer(204, b"")));
    }

    #[test]
    fn a_cut_or_garbled_response_is_refused_with_what_was_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n",
                "inside its head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc",
                "after 3 of its 5",
            ),
            (b"SPDY 200\r\n\r\n", "not HTTP/1.x"),
            (b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "no ':'"),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "not hexadecimal",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
                "after 2 of its 5",
            ),
        ];
        for (raw, expected) in cases {
            let err = parse(raw).expect_err(expected);
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
    }
}
