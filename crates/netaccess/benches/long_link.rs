//! HTTP/2 against HTTP/1.1 on a long link (issue 12 §5): a 64 MiB download between two
//! network namespaces this program creates, joined by a 50 ms round trip.
//!
//! The kernel these machines run has no `netem` queueing discipline (`tc qdisc add ... netem`
//! answers "Specified qdisc kind is unknown"), so the link is a delay line in user space: a
//! TUN device in each namespace, and two threads that move every IP packet from one to the
//! other 25 ms after it was read (each way, so 50 ms round trip), in order, without loss.
//! TCP runs end to end between the namespaces, with the kernel's own windows and congestion
//! control, as over netem. The server side is the test server on the server namespace's
//! loopback, behind a TCP relay on the link address (the relay is on the far side of the
//! link, so the long part is the client's own TCP connection).
//!
//! Run as root: `cargo bench -p netaccess --bench long_link` (without root it says so and
//! stops). Addresses: 198.18.1.1 and 198.18.1.2 (RFC 2544's range for test networks), which
//! exist only inside the two namespaces. Bounded: 3 rounds of 64 MiB per configuration.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netaccess::{NetworkAccessManager, Request};
use netaccess_testserver::TestServer;

const ONE_WAY: Duration = Duration::from_millis(25);
const SIZE: usize = 64 << 20;
const ROUNDS: usize = 3;
const MTU: &str = "9000";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Two namespaces, deleted on drop.
struct Namespaces {
    client: String,
    server: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.client]);
        ip(&["netns", "del", &self.server]);
    }
}

/// Enters namespace `name` on this thread.
fn enter(name: &str) {
    let file = File::open(format!("/var/run/netns/{name}")).expect("namespace file");
    // SAFETY: setns on a valid namespace descriptor; it changes only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Opens TUN device `name` (no packet information header) in namespace `ns`, and gives it
/// `local` with `peer` at the other end.
fn tun(ns: &str, name: &str, local: &str, peer: &str) -> File {
    let ns_owned = ns.to_owned();
    let name_owned = name.to_owned();
    let file = std::thread::spawn(move || {
        enter(&ns_owned);
        // SAFETY: open(2) of a constant path; the descriptor is owned by the File below.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR) };
        assert!(
            fd >= 0,
            "open /dev/net/tun: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd is a fresh, valid descriptor no one else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        // struct ifreq: the name (16 bytes), then the flags (a short), padded to 40 bytes.
        let mut ifreq = [0u8; 40];
        ifreq[..name_owned.len()].copy_from_slice(name_owned.as_bytes());
        let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as u16;
        ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF with a properly sized ifreq buffer.
        let rc = unsafe { libc::ioctl(fd, libc::TUNSETIFF as _, ifreq.as_mut_ptr()) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        file
    })
    .join()
    .expect("tun thread");
    let local_cidr = format!("{local}/32");
    for args in [
        vec![
            "-n",
            ns,
            "addr",
            "add",
            &local_cidr,
            "peer",
            peer,
            "dev",
            name,
        ],
        vec!["-n", ns, "link", "set", name, "mtu", MTU, "up"],
        vec!["-n", ns, "link", "set", "lo", "up"],
    ] {
        assert!(ip(&args), "ip {args:?}");
    }
    file
}

/// Moves packets read from `from` into `to`, each `ONE_WAY` after it was read.
fn delay_line(mut from: File, mut to: File) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = from.read(&mut buf) {
            if tx
                .send((Instant::now() + ONE_WAY, buf[..n].to_vec()))
                .is_err()
            {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, packet)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write(&packet).is_err() {
                return;
            }
        }
    });
}

/// One configuration of the client: a name and its manager.
struct Client {
    name: &'static str,
    http2: bool,
    manager: fn() -> NetworkAccessManager,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test runners: nothing to list
    }
    let pid = std::process::id();
    let ns = Namespaces {
        client: format!("na-ll-c-{pid}"),
        server: format!("na-ll-s-{pid}"),
    };
    if !ip(&["netns", "add", &ns.client]) || !ip(&["netns", "add", &ns.server]) {
        eprintln!("long_link: making network namespaces needs root; nothing measured");
        return;
    }
    let client_tun = tun(&ns.client, "llc", "198.18.1.1", "198.18.1.2");
    let server_tun = tun(&ns.server, "lls", "198.18.1.2", "198.18.1.1");
    delay_line(
        client_tun.try_clone().unwrap(),
        server_tun.try_clone().unwrap(),
    );
    delay_line(server_tun, client_tun);

    // The server namespace: the test server on loopback, a relay on the link address.
    let server_ns = ns.server.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        enter(&server_ns);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = TestServer::h2c().await;
            let relay = tokio::net::TcpListener::bind("198.18.1.2:8080")
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            let target = server.addr();
            while let Ok((mut inbound, _)) = relay.accept().await {
                tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
    });
    ready_rx.recv().expect("server ready");

    let clients = [
        Client {
            name: "HTTP/1.1",
            http2: false,
            manager: NetworkAccessManager::new,
        },
        Client {
            name: "HTTP/2 (default, 8/64 MiB)",
            http2: true,
            manager: NetworkAccessManager::new,
        },
        Client {
            name: "HTTP/2 (1/16 MiB windows)",
            http2: true,
            manager: || {
                NetworkAccessManager::builder()
                    .http2_windows(1 << 20, 16 << 20)
                    .build()
                    .unwrap()
            },
        },
        Client {
            name: "HTTP/2 (adaptive window)",
            http2: true,
            manager: || {
                NetworkAccessManager::builder()
                    .http2_adaptive_window(true)
                    .build()
                    .unwrap()
            },
        },
    ];
    let client_ns = ns.client.clone();
    let results = std::thread::spawn(move || {
        enter(&client_ns);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let url = format!("http://198.18.1.2:8080/bytes/{SIZE}");
            let mut results = Vec::new();
            for round in 0..ROUNDS {
                for client in &clients {
                    let manager = (client.manager)();
                    let request = Request::new(url.as_str())
                        .with_http2_direct(client.http2)
                        .with_http2_allowed(client.http2);
                    let started = Instant::now();
                    let reply = manager.get(request);
                    let body = reply.bytes().await.expect("the body");
                    let took = started.elapsed();
                    assert_eq!(body.len(), SIZE);
                    assert_eq!(reply.http2_was_used(), client.http2);
                    let rate = SIZE as f64 / took.as_secs_f64() / 1e6;
                    println!(
                        "round {round}: {:<26} {took:>8.2?} {rate:>8.1} MB/s",
                        client.name
                    );
                    results.push((round, client.name, rate));
                }
            }
            results
        })
    })
    .join()
    .expect("client thread");
    println!(
        "\n50 ms round trip, {} MiB, per round: HTTP/2 / HTTP/1.1",
        SIZE >> 20
    );
    for round in 0..ROUNDS {
        let of = |name: &str| {
            results
                .iter()
                .find(|(r, n, _)| *r == round && *n == name)
                .map(|(_, _, rate)| *rate)
                .unwrap_or(f64::NAN)
        };
        let h1 = of("HTTP/1.1");
        println!(
            "round {round}: default (8/64 MiB) {:.2}x, 1/16 MiB {:.2}x, adaptive window {:.2}x",
            of("HTTP/2 (default, 8/64 MiB)") / h1,
            of("HTTP/2 (1/16 MiB windows)") / h1,
            of("HTTP/2 (adaptive window)") / h1
        );
    }
}
