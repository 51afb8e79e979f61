use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn pool(policy: Policy, weights: &[(u16, u32)]) -> Pool {
    Pool::new(
        weights.iter().map(|&(p, w)| (addr(p), w)).collect(),
        policy,
        Ejection {
            failures: 3,
            duration: Duration::from_secs(10),
        },
        RetryBudget::new(0.2, 3),
    )
}

fn picks(p: &Pool, n: usize, now: Instant) -> Vec<u16> {
    (0..n)
        .map(|_| p.pick(None, now).unwrap().endpoint.addr.port())
        .collect()
}

#[test]
fn round_robin_takes_each_address_as_often_as_its_weight() {
    let p = pool(Policy::RoundRobin, &[(1, 1), (2, 2)]);
    let got = picks(&p, 30, Instant::now());
    assert_eq!(got.iter().filter(|&&x| x == 1).count(), 10);
    assert_eq!(got.iter().filter(|&&x| x == 2).count(), 20);
}

#[test]
fn least_requests_avoids_the_address_with_requests_in_flight() {
    let p = pool(Policy::LeastRequests, &[(1, 1), (2, 1)]);
    let now = Instant::now();
    // Hold 50 requests on whichever address each pick gives, then see the spread.
    let held: Vec<Lease> = (0..50).map(|_| p.pick(None, now).unwrap()).collect();
    let on = |port| {
        held.iter()
            .filter(|l| l.endpoint.addr.port() == port)
            .count()
    };
    let (a, b) = (on(1), on(2));
    assert!(a.abs_diff(b) <= 10, "{a} vs {b}");
    drop(held);
    assert!(p.endpoints().iter().all(|e| e.in_flight() == 0));
}

#[test]
fn consecutive_failures_eject_an_address_until_its_time_is_up() {
    let p = pool(Policy::RoundRobin, &[(1, 1), (2, 1)]);
    let now = Instant::now();
    let bad = p
        .endpoints()
        .iter()
        .find(|e| e.addr.port() == 1)
        .unwrap()
        .clone();
    let lease = Lease {
        endpoint: bad.clone(),
        ejection: p.ejection,
    };
    bad.in_flight.fetch_add(1, Ordering::Relaxed);
    assert!(!lease.report(Outcome::Failed, now));
    assert!(!lease.report(Outcome::Failed, now));
    assert!(
        lease.report(Outcome::Failed, now),
        "the third in a row ejects"
    );
    assert!(
        picks(&p, 10, now).iter().all(|&x| x == 2),
        "ejected: not picked"
    );
    // Its time is up: tried again; one more failure ejects it again at once.
    let later = now + Duration::from_secs(11);
    assert!(picks(&p, 10, later).contains(&1));
    assert!(lease.report(Outcome::Failed, later));
    // An answer resets the count.
    let after = later + Duration::from_secs(11);
    lease.report(Outcome::Answered, after);
    assert!(!lease.report(Outcome::Failed, after));
    drop(lease);
}

#[test]
fn with_every_address_out_any_is_tried_and_a_retry_avoids_the_one_that_failed() {
    let p = pool(Policy::RoundRobin, &[(1, 1), (2, 1)]);
    let now = Instant::now();
    p.set_down(addr(1), true);
    p.set_down(addr(2), true);
    assert!(p.pick(None, now).is_some(), "none usable: any");
    p.set_down(addr(2), false);
    for _ in 0..5 {
        assert_eq!(p.pick(Some(addr(2)), now).unwrap().endpoint.addr, addr(1));
    }
}

#[test]
fn new_addresses_keep_what_was_learnt_of_those_that_stay() {
    let p = pool(Policy::RoundRobin, &[(1, 1), (2, 1)]);
    p.set_down(addr(2), true);
    p.set_addresses(&[(addr(2), 1), (addr(3), 1)]);
    let now = Instant::now();
    let got = picks(&p, 10, now);
    assert!(
        got.iter().all(|&x| x == 3),
        "2 is still down, 1 is gone: {got:?}"
    );
}

#[test]
fn the_retry_budget_lets_a_fifth_of_the_requests_be_retried() {
    let b = RetryBudget::new(0.2, 3);
    let mut retried = 0;
    for _ in 0..1000 {
        b.earn();
        if b.spend() {
            retried += 1;
        }
    }
    assert!((200..=204).contains(&retried), "{retried}");
}
