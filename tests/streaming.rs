//! Answers stream through without being buffered or cut for their length: an event stream
//! arrives event by event, long after the response timeout; an upstream that stops sending
//! in the middle of a body is cut after `upstreams.<name>.timeouts.body`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::*;

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
