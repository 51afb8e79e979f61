//! Bodies stream through without being buffered or cut for their length: an event stream
//! arrives event by event, long after the response timeout; an upstream that stops sending
//! in the middle of a body is cut after `upstreams.<name>.timeouts.body`; a 2 GiB upload
//! passes with the gateway's memory flat; a slow reader holds the upstream back (TCP
//! backpressure through the gateway) instead of filling the gateway's memory.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::*;

/// The tests here measure time and memory: one at a time, so that the 2 GiB upload does not
/// slow the event stream down.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An upstream on loopback answering every request with a chunked body: `events` chunks
/// `every` apart, then — when `stall` — nothing more, the connection left open.
fn chunked_upstream(events: usize, every: Duration, stall: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                for i in 0..events {
                    let event = format!("data: {i}\n\n");
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
                if stall {
                    std::thread::sleep(Duration::from_secs(30));
                } else {
                    let _ = stream.write_all(b"0\r\n\r\n");
                }
            });
        }
    });
    addr
}

fn gateway(upstream: std::net::SocketAddr, body_pause: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{}", timeouts: {{ upstream_response: 1s }} }}
admin: {{ listen: "127.0.0.1:{}" }}
upstreams: {{ events: {{ url: "http://{upstream}", timeouts: {{ body: {body_pause} }} }} }}
routes:
  - {{ name: events, match: {{ path: /events }}, upstream: events, auth: none }}
"#,
        free_port(),
        free_port()
    ))
}

/// Reads a chunked answer from `stream`: each chunk's arrival time since `start`, and
/// whether the terminating chunk came.
fn chunks(stream: TcpStream, start: Instant) -> (Vec<Duration>, bool) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let mut arrivals = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return (arrivals, false);
        }
        let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
        if size == 0 {
            return (arrivals, true);
        }
        let mut data = vec![0; size + 2];
        if reader.read_exact(&mut data).is_err() {
            return (arrivals, false);
        }
        arrivals.push(start.elapsed());
    }
}

fn request(gw: &TestGateway) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        .unwrap();
    s
}

#[test]
fn an_event_stream_arrives_event_by_event_and_is_never_cut_for_its_length() {
    let _alone = alone();
    // 20 events 100 ms apart: 2 s in all, twice the response timeout, 4 times the pause.
    let gw = gateway(
        chunked_upstream(20, Duration::from_millis(100), false),
        "500ms",
    );
    let start = Instant::now();
    let (arrivals, complete) = chunks(request(&gw), start);
    assert!(complete, "the stream ended properly");
    assert_eq!(arrivals.len(), 20);
    // Each event arrives when it was sent, not all at the end: the gaps are the upstream's.
    let gaps: Vec<u128> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    let late = gaps.iter().filter(|g| **g > 300).count();
    assert!(late <= 1, "events held back: gaps {gaps:?} ms");
    assert!(
        arrivals[19] - arrivals[0] >= Duration::from_millis(1700),
        "{arrivals:?}"
    );
    println!("event gaps (ms, sent 100 ms apart): {gaps:?}");
}

#[test]
fn an_upstream_that_stops_in_the_middle_of_a_body_is_cut_after_the_pause() {
    let _alone = alone();
    let gw = gateway(
        chunked_upstream(3, Duration::from_millis(50), true),
        "400ms",
    );
    let start = Instant::now();
    let (arrivals, complete) = chunks(request(&gw), start);
    assert_eq!(arrivals.len(), 3, "what came before the stall arrived");
    assert!(
        !complete,
        "the client's answer ends unfinished, never looks complete"
    );
    let cut = start.elapsed();
    assert!(
        cut >= Duration::from_millis(500) && cut < Duration::from_secs(5),
        "cut after {cut:?}"
    );
    println!(
        "cut {} ms after the request (3 events, then a 400 ms pause)",
        cut.as_millis()
    );
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`: the peak).
fn kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

fn plain_gateway(upstream: std::net::SocketAddr) -> TestGateway {
    TestGateway::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{}", limits: {{ max_body_bytes: 4294967296 }} }}
admin: {{ listen: "127.0.0.1:{}" }}
upstreams: {{ bulk: {{ url: "http://{upstream}" }} }}
routes:
  - {{ name: bulk, match: {{ path: /bulk }}, upstream: bulk, auth: none }}
"#,
        free_port(),
        free_port()
    ))
}

#[test]
fn a_two_gib_upload_streams_through_while_the_gateways_memory_stays_flat() {
    let _alone = alone();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const SIZE: u64 = 2 << 30;
    // The upstream counts what arrives, keeping none of it.
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let (upstream, _runtime) = serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let counted = counted.clone();
        async move {
            use http_body_util::BodyExt;
            let mut body = req.into_body();
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(d) = frame.data_ref() {
                    counted.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
            }
            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
        }
    });
    let gw = plain_gateway(upstream);
    let before = kib(gw.pid(), "VmRSS:");
    // A chunked body of zeros, produced as it is sent.
    struct Zeros(u64);
    impl Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(0);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let start = Instant::now();
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
        .post(format!("{}/bulk", gw.url))
        .body(reqwest::blocking::Body::new(Zeros(SIZE)))
        .send()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(received.load(Ordering::Relaxed), SIZE);
    let peak = kib(gw.pid(), "VmHWM:");
    println!(
        "2 GiB through the gateway in {:.1} s ({:.0} MiB/s); gateway RSS {} KiB before, peak {} KiB",
        took.as_secs_f64(),
        2048.0 / took.as_secs_f64(),
        before,
        peak
    );
    assert!(
        peak < before + 64 * 1024,
        "peak {peak} KiB after {before} KiB"
    );
}

#[test]
fn a_slow_reader_holds_the_upstream_back_instead_of_growing_the_gateways_memory() {
    let _alone = alone();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const SIZE: u64 = 256 << 20;
    // The upstream writes a 256 MiB answer as fast as the gateway takes it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let progress = written.clone();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        let chunk = vec![0u8; 64 << 10];
        while progress.load(Ordering::Relaxed) < SIZE {
            if stream.write_all(&chunk).is_err() {
                return;
            }
            progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let gw = plain_gateway(upstream);
    let before = kib(gw.pid(), "VmRSS:");
    let mut client = TcpStream::connect(gw.addr).unwrap();
    client
        .write_all(b"GET /bulk HTTP/1.1\r\nHost: api\r\n\r\n")
        .unwrap();
    // Read a little, then stop reading for two seconds.
    let mut buf = vec![0u8; 1 << 20];
    client.read_exact(&mut buf).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let sent = written.load(Ordering::Relaxed);
    let rss = kib(gw.pid(), "VmRSS:");
    println!(
        "slow reader: the upstream had written {} MiB of 256 after 2 s; gateway RSS {before} -> {rss} KiB",
        sent >> 20
    );
    // What is in flight is socket buffers and a few frames, not the answer.
    assert!(
        sent < 64 << 20,
        "the upstream was not held back: {} MiB",
        sent >> 20
    );
    assert!(rss < before + 32 * 1024, "RSS {before} -> {rss} KiB");
}
