//! Happy Eyeballs (RFC 8305) with a first address that drops every SYN, inside a network
//! namespace this test creates: a veth pair whose far end has no address, with a permanent
//! neighbour entry so the SYN is sent and silently dropped there (not refused). The second
//! address (the test server on the namespace's own loopback) must win within a second.
//!
//! Needs root (`ip netns add`); CI runs as root and sets `NETACCESS_REQUIRE_NETNS=1`, which
//! makes a missing privilege a failure instead of a skip. Nothing outside the namespace is
//! ever addressed: 198.18.0.0/15 (RFC 2544, for test networks) exists only on its veth.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaccess::events::{Event, EventListener};
use netaccess::{NetworkAccessManager, Reply, Request};
use netaccess_testserver::TestServer;

const BLACK_HOLE: [u8; 4] = [198, 18, 0, 2];

/// A network namespace, deleted on drop.
struct Namespace(String);

impl Namespace {
    /// A namespace with loopback up and a black-holed 198.18.0.2; `None` without the
    /// privilege to make one.
    fn create() -> Option<Namespace> {
        let name = format!("na-he-{}", std::process::id());
        if !ip(&["netns", "add", &name]) {
            return None;
        }
        let ns = Namespace(name);
        let n = ns.0.as_str();
        for args in [
            vec!["-n", n, "link", "set", "lo", "up"],
            vec![
                "-n", n, "link", "add", "va", "type", "veth", "peer", "name", "vb",
            ],
            vec!["-n", n, "addr", "add", "198.18.0.1/24", "dev", "va"],
            vec!["-n", n, "link", "set", "va", "up"],
            vec!["-n", n, "link", "set", "vb", "up"],
        ] {
            assert!(ip(&args), "ip {args:?} failed");
        }
        let mac = Command::new("ip")
            .args(["-n", n, "-o", "link", "show", "vb"])
            .output()
            .expect("ip link show");
        let text = String::from_utf8_lossy(&mac.stdout).into_owned();
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("vb has a MAC address")
            .to_owned();
        let neigh = [
            "-n",
            n,
            "neigh",
            "add",
            "198.18.0.2",
            "lladdr",
            &mac,
            "dev",
            "va",
            "nud",
            "permanent",
        ];
        assert!(ip(&neigh), "ip neigh add failed");
        Some(ns)
    }

    /// Runs `body` on a thread inside the namespace, with a runtime of its own.
    fn run<T: Send + 'static>(
        &self,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::Result<T> {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let file = std::fs::File::open(&path).expect("the namespace file");
            // SAFETY: setns on a valid namespace descriptor; it changes only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            body()
        })
        .join()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `dual.test` is the black hole first, then loopback.
struct BlackHoleFirst;

impl netaccess::Resolve for BlackHoleFirst {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
    ) -> netaccess::BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async { Ok(vec![IpAddr::from(BLACK_HOLE), IpAddr::from([127, 0, 0, 1])]) })
    }
}

/// The connect events, in order.
#[derive(Default)]
struct Connects(Mutex<Vec<(&'static str, SocketAddr)>>);

impl EventListener for Connects {
    fn on_event(&self, _: &Reply, event: &Event<'_>) {
        let seen = match event {
            Event::ConnectStart { addr } => ("start", *addr),
            Event::ConnectEnd { addr } => ("end", *addr),
            Event::ConnectFailed { addr, .. } => ("failed", *addr),
            _ => return,
        };
        self.0.lock().unwrap().push(seen);
    }
}

#[test]
fn happy_eyeballs_connects_within_a_second_past_a_black_holed_first_address() {
    let Some(ns) = Namespace::create() else {
        assert!(
            std::env::var_os("NETACCESS_REQUIRE_NETNS").is_none(),
            "NETACCESS_REQUIRE_NETNS is set but no network namespace could be made"
        );
        eprintln!("skipped: making a network namespace needs root");
        return;
    };
    let outcome = ns.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Inside the namespace: the first address really is a black hole.
            let hole = SocketAddr::from((BLACK_HOLE, 80));
            let probe = tokio::time::timeout(
                Duration::from_millis(600),
                tokio::net::TcpStream::connect(hole),
            );
            assert!(probe.await.is_err(), "the SYN to {hole} must go unanswered");

            let server = TestServer::http1().await;
            let connects = Arc::new(Connects::default());
            let manager = NetworkAccessManager::builder()
                .resolver(Arc::new(BlackHoleFirst))
                .event_listener(connects.clone())
                .build()
                .unwrap();
            let url = format!("http://dual.test:{}/hello", server.port());
            let reply = manager.get(Request::new(url));
            let text = reply.text().await.expect("the second address answers");
            let seen = connects.0.lock().unwrap().clone();
            (text, reply.timings(), seen, server.addr())
        })
    });
    let (text, timings, seen, server) = outcome.expect("the namespace thread");
    assert_eq!(text, "hello");
    let hole = SocketAddr::new(IpAddr::from(BLACK_HOLE), server.port());
    assert_eq!(
        seen,
        [("start", hole), ("start", server), ("end", server)],
        "the black hole first, then loopback wins"
    );
    let connected = timings.connected.expect("connected");
    assert!(
        connected < Duration::from_secs(1),
        "connected after {connected:?}"
    );
    assert_eq!(timings.remote_addr, Some(server));
}
