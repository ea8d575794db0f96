//! A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe`
//! (JSON messages ended by NUL on the browser's fds 3 and 4), so a test can
//! keep one page open, evaluate JavaScript in it and click its form, with
//! no WebSocket and no extra crate. The pipes are FIFOs the shell that
//! execs Chromium opens as fds 3 and 4. The browser is killed on drop.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Daemon;

/// A headless Chromium in `d`'s host namespace with one page attached.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next: u64,
    session: String,
    /// Set on drop; until then a watchdog kills a browser that outlives
    /// [`WATCHDOG`] (a read from a hung browser would block forever).
    done: Arc<AtomicBool>,
}

/// The longest a test's browser may live.
const WATCHDOG: Duration = Duration::from_secs(90);

impl Browser {
    /// Starts Chromium (profile and FIFOs under `dir`) and opens `url`.
    pub fn open(d: &Daemon, url: &str, dir: &Path) -> Browser {
        let (fifo_in, fifo_out) = (dir.join("cdp.in"), dir.join("cdp.out"));
        for f in [&fifo_in, &fifo_out] {
            nix::unistd::mkfifo(f, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        }
        let script = format!(
            "exec chromium --headless --no-sandbox --disable-gpu --no-first-run \
             --remote-debugging-pipe --user-data-dir='{}' 3<'{}' 4>'{}'",
            dir.join("profile").display(),
            fifo_in.display(),
            fifo_out.display()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &d.host, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromium");
        let done = Arc::new(AtomicBool::new(false));
        let (pid, stop) = (child.id(), done.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + WATCHDOG;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        });
        // The shell opens fd 3 (reading) first, then fd 4 (writing).
        let to = OpenOptions::new()
            .write(true)
            .open(&fifo_in)
            .expect("open cdp.in");
        let from = BufReader::new(File::open(&fifo_out).expect("open cdp.out"));
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            done,
        };
        let target = b.call(None, "Target.createTarget", json!({ "url": url }));
        let id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": id, "flatten": true }),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        b
    }

    /// Sends one command and returns its `result` (events are skipped).
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut msg = json!({ "id": self.next, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("encode");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the pipe during {method}");
            buf.pop();
            let reply: Value = serde_json::from_slice(&buf).expect("CDP message");
            if reply["id"] == json!(self.next) {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of `expression` in the page (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let r = self.call(Some(&session), "Runtime.evaluate", params);
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true, for up to `limit`.
    pub fn wait_for(&mut self, expression: &str, limit: Duration) {
        let until = Instant::now() + limit;
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < until, "never true: {expression}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
