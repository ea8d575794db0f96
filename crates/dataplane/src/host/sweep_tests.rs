use super::*;
use std::sync::mpsc::{channel, Receiver};

/// A sweeper whose destruction reports the names of each round.
fn recording() -> (Sweeper, Receiver<Vec<String>>) {
    let (tx, rx) = channel();
    let sweeper = Sweeper::new(Box::new(move |names: &[String]| {
        let _ = tx.send(names.to_vec());
    }));
    (sweeper, rx)
}

/// Keeps the host busy for `d`.
fn busy_for(s: &Sweeper, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        s.busy();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn retired_ports_wait_for_a_quiet_host_and_go_together() {
    let (s, rx) = recording();
    s.busy();
    s.retire("p1");
    s.retire("p2");
    busy_for(&s, QUIET * 4);
    assert!(rx.try_recv().is_err(), "destroyed while the host was busy");
    let round = rx.recv_timeout(QUIET * 20).expect("destroyed once quiet");
    assert_eq!(round, ["p1", "p2"]);
    assert_eq!(s.pending(), 0);
}

#[test]
fn settle_destroys_at_once_even_while_busy() {
    let (s, rx) = recording();
    s.busy();
    s.retire("p1");
    let t = Instant::now();
    s.settle();
    assert!(t.elapsed() < QUIET, "settle waited for quiet");
    assert_eq!(rx.try_recv().expect("destroyed by settle"), ["p1"]);
    // Nothing pending: returns at once, destroys nothing.
    s.settle();
    assert!(rx.try_recv().is_err());
}

#[test]
fn steady_churn_destroys_a_full_batch_without_quiet() {
    let (s, rx) = recording();
    s.busy();
    for i in 0..MAX_BATCH {
        s.retire(&format!("p{i}"));
    }
    let round = rx.recv_timeout(QUIET).expect("a full batch goes at once");
    assert_eq!(round.len(), MAX_BATCH);
}

#[test]
fn a_port_waits_at_most_max_wait_under_steady_churn() {
    let (s, rx) = recording();
    s.busy();
    s.retire("p1");
    let t = Instant::now();
    let worker = std::thread::scope(|scope| {
        let h = scope.spawn(|| busy_for(&s, MAX_WAIT * 2));
        let round = rx
            .recv_timeout(MAX_WAIT * 2)
            .expect("destroyed within MAX_WAIT");
        let waited = t.elapsed();
        h.join().expect("busy thread");
        (round, waited)
    });
    assert_eq!(worker.0, ["p1"]);
    assert!(
        worker.1 >= MAX_WAIT && worker.1 < MAX_WAIT + QUIET * 8,
        "waited {:?}",
        worker.1
    );
}

#[test]
fn dropping_destroys_what_is_pending() {
    let (s, rx) = recording();
    s.busy();
    s.retire("p1");
    drop(s);
    assert_eq!(rx.try_recv().expect("destroyed at drop"), ["p1"]);
}
