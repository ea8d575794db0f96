//! Attacks on the daemon's API by other local users (spec §9, hostile
//! tenants), against the real `bulkheadd` in a throwaway host namespace.
//! Other users' connections are made by a forked child that drops to
//! `nobody` (`common/as_user.rs`), so the daemon sees their real peer
//! credentials. Each attack is first shown to work against a weakened
//! daemon (the attacker's group granted, the socket's file mode opened,
//! the header timeout or the per-uid cap effectively off), then refused.

#[path = "common/as_user.rs"]
mod as_user;
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use as_user::{connect_as, nobody};
use common::Daemon;

/// A group nobody is not in unless a test gives it: the API group.
const API_GID: u32 = 4242;

/// One request with `connection: close`; (status, body).
fn http(s: &mut UnixStream, method: &str, path: &str, body: &str) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: bulkhead\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // A refused connection may be closed before the request is all sent:
    // what the daemon answered is read all the same.
    let _ = s.write_all(req.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// One connection to `d`'s socket made by `user`.
fn one_as(user: &as_user::User, d: &Daemon) -> UnixStream {
    let mut v = connect_as(user, &d.socket(), 1).expect("connect");
    v.pop().expect("one connection")
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Opens every file-mode fence on the way to the socket: from here on only
/// the daemon's peer-credential check stands between nobody and the API.
fn open_file_modes(d: &Daemon) {
    chmod(d.dir.path(), 0o755);
    chmod(d.socket().parent().unwrap(), 0o755);
    chmod(&d.socket(), 0o666);
}

fn create_namespace(s: &mut UnixStream, name: &str) -> (u16, String) {
    http(
        s,
        "POST",
        "/v1/namespaces",
        &format!("{{\"name\":\"{name}\"}}"),
    )
}

#[test]
fn other_users_are_refused_by_peer_credentials_not_by_file_mode() {
    // Weakened: the attacker's own group is the API group: served.
    let Some(weak) = Daemon::start_with(&["--api-group", "65534"]) else {
        return;
    };
    chmod(weak.dir.path(), 0o755);
    let mut s = one_as(&nobody(&[]), &weak);
    assert_eq!(create_namespace(&mut s, "stolen").0, 201, "weakened setup");
    assert!(weak.names("namespace").contains(&"stolen".to_owned()));

    let Some(d) = Daemon::start_with(&["--api-group", &API_GID.to_string()]) else {
        return;
    };
    chmod(d.dir.path(), 0o755);
    // First fence: the file mode (socket 0660 root:4242, its dir 0750).
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode with --api-group");
    let err = connect_as(&nobody(&[]), &d.socket(), 1).expect_err("file mode lets nobody in");
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    // Members are served, by supplementary group and by primary gid.
    let mut m = one_as(&nobody(&[API_GID]), &d);
    assert_eq!(create_namespace(&mut m, "tenant").0, 201, "member");
    let primary = as_user::User {
        uid: 65534,
        gid: API_GID,
        groups: vec![],
    };
    let mut p = one_as(&primary, &d);
    assert_eq!(http(&mut p, "GET", "/v1/health", "").0, 200, "primary gid");
    // Second fence, the check itself: with the file mode wide open the
    // attacker connects, and is still refused: 403, one line of JSON.
    open_file_modes(&d);
    let mut conns = connect_as(&nobody(&[]), &d.socket(), 2).expect("open mode lets it connect");
    let (status, body) = create_namespace(&mut conns[0], "stolen");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body.lines().count(), 1, "{body:?}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(v["error"]["code"], "forbidden");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("uid 65534"));
    assert_eq!(http(&mut conns[1], "GET", "/v1/namespaces", "").0, 403);
    assert_eq!(
        d.names("namespace"),
        ["tenant"],
        "the refused create happened"
    );
    assert!(d.log().contains("API connection refused"), "{}", d.log());
}

#[test]
fn the_socket_is_root_only_without_an_api_group() {
    let Some(d) = Daemon::start() else { return };
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Weakened (file modes opened by hand): nobody reaches the socket, and
    // the credential check refuses it.
    open_file_modes(&d);
    let mut s = one_as(&nobody(&[API_GID]), &d);
    assert_eq!(http(&mut s, "GET", "/v1/health", "").0, 403);
    d.ok(&["namespace", "ls"]);
}

/// Opens `n` connections as an API-group member, and 300 ms later 4 more
/// (taking any slot the harness's start-up probe connection held at first),
/// and trickles a request head into each, one byte every 100 ms, from one
/// thread; returns, per connection, when the daemon closed it, counted
/// from the second wave (or `None` if it was still open after `watch`).
fn slowloris(
    d: &Daemon,
    n: usize,
    watch: Duration,
) -> std::thread::JoinHandle<Vec<Option<Duration>>> {
    let attacker = nobody(&[API_GID]);
    let mut conns = connect_as(&attacker, &d.socket(), n).expect("attacker connects");
    std::thread::sleep(Duration::from_millis(300));
    conns.extend(connect_as(&attacker, &d.socket(), 4).expect("attacker connects"));
    std::thread::spawn(move || {
        let head = b"GET /v1/namespaces HTTP/1.1\r\nhost: x\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let start = Instant::now();
        let mut closed: Vec<Option<Duration>> = vec![None; conns.len()];
        for c in &conns {
            c.set_nonblocking(true).unwrap();
        }
        let mut i = 0;
        while start.elapsed() < watch && closed.iter().any(Option::is_none) {
            for (c, at) in conns
                .iter()
                .zip(closed.iter_mut())
                .filter(|(_, a)| a.is_none())
            {
                let mut c = c;
                let mut buf = [0u8; 512];
                let gone = match c.read(&mut buf) {
                    Ok(_) => true, // EOF, or the 408/503 before closing
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                } || c.write(&head[i % head.len()..=i % head.len()]).is_err();
                if gone {
                    *at = Some(start.elapsed());
                }
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        closed
    })
}

/// How long a root request takes while the attack runs (fresh connection).
fn root_request_time(d: &Daemon) -> (u16, Duration) {
    let t = Instant::now();
    let mut s = UnixStream::connect(d.socket()).expect("root connects");
    let (status, _) = http(&mut s, "GET", "/v1/namespaces", "");
    (status, t.elapsed())
}

#[test]
fn slowloris_neither_starves_root_nor_holds_connections() {
    let group = API_GID.to_string();
    let caps = ["--api-max-connections", "16", "--api-group", &group];
    // Weakened: no useful header timeout, and one uid may take every slot.
    let mut weak_args = caps.to_vec();
    weak_args.extend([
        "--api-header-timeout",
        "1h",
        "--api-max-connections-per-uid",
        "16",
    ]);
    let Some(weak) = Daemon::start_with(&weak_args) else {
        return;
    };
    chmod(weak.dir.path(), 0o755);
    let attack = slowloris(&weak, 16, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = root_request_time(&weak);
    assert_ne!(
        status, 200,
        "weakened: root was served despite a full table"
    );
    let closed = attack.join().unwrap();
    let held = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        held, 16,
        "weakened: the attacker holds every slot: {closed:?}"
    );

    // Defended: 1 s to send a head, at most 8 connections per uid.
    let mut args = caps.to_vec();
    args.extend([
        "--api-header-timeout",
        "1s",
        "--api-max-connections-per-uid",
        "8",
    ]);
    let Some(d) = Daemon::start_with(&args) else {
        return;
    };
    chmod(d.dir.path(), 0o755);
    let attack = slowloris(&d, 16, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let (status, took) = root_request_time(&d);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "root waited {took:?}");
    }
    let closed = attack.join().unwrap();
    // 12 over the per-uid cap are refused at once; the 8 admitted are
    // closed by the header timeout (1 s from their accept, up to 300 ms
    // before the count starts) although a byte arrives every 100 ms.
    let mut at: Vec<Duration> = closed
        .iter()
        .map(|c| c.expect("still open after 5 s"))
        .collect();
    at.sort();
    assert!(
        at[11] < Duration::from_millis(300),
        "over the cap not refused at once: {at:?}"
    );
    for t in &at[12..] {
        assert!(
            *t >= Duration::from_millis(400) && *t < Duration::from_millis(2500),
            "{at:?}"
        );
    }
}

/// A connection that has had one request answered and stays open; retried
/// while refused (the harness's start-up probe may still hold a slot).
fn kept_alive(d: &Daemon) -> UnixStream {
    for _ in 0..50 {
        let mut s = UnixStream::connect(d.socket()).expect("connect");
        let _ = s.write_all(b"GET /v1/health HTTP/1.1\r\nhost: bulkhead\r\n\r\n");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"}") {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        if got.starts_with(b"HTTP/1.1 200") {
            return s;
        }
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 503"),
            "{got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never admitted");
}

#[test]
fn connections_over_the_cap_are_refused_at_once_not_queued() {
    let Some(d) = Daemon::start_with(&["--api-max-connections", "8"]) else {
        return;
    };
    // Eight kept-alive connections, each shown admitted by an answer.
    let idle: Vec<UnixStream> = (0..8).map(|_| kept_alive(&d)).collect();
    let t = Instant::now();
    let mut extra = UnixStream::connect(d.socket()).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = String::new();
    let _ = extra.read_to_string(&mut out);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "queued for {:?}: {out:?} {}",
        t.elapsed(),
        d.log()
    );
    assert!(out.starts_with("HTTP/1.1 503"), "{out:?}");
    assert!(out.contains("too many open connections"), "{out:?}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    d.ok(&["namespace", "ls"]);
}
