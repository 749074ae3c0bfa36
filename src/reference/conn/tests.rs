use super::*;

fn registry(max: usize) -> Registry {
    Registry {
        max,
        inner: Mutex::new(Slots::default()),
    }
}

#[test]
fn at_the_cap_the_longest_waiting_connection_makes_room() {
    let registry = registry(2);
    let first = registry.admit().expect("room");
    let second = registry.admit().expect("room");
    let _third = registry.admit().expect("room by eviction");
    assert!(matches!(*first.phase.borrow(), Phase::Closing));
    assert!(matches!(*second.phase.borrow(), Phase::Head(_)));
    assert_eq!(registry.lock().open.len(), 2);
    assert!(
        !first.begin_request(),
        "an evicted connection handles nothing"
    );
}

#[test]
fn busy_connections_are_never_evicted_and_a_full_house_refuses() {
    let registry = registry(2);
    let old = registry.admit().expect("room");
    let young = registry.admit().expect("room");
    assert!(old.begin_request());
    let newest = registry.admit().expect("room by eviction");
    assert!(matches!(*old.phase.borrow(), Phase::Busy(_)));
    assert!(matches!(*young.phase.borrow(), Phase::Closing));
    assert!(newest.begin_request());
    assert!(registry.admit().is_none(), "every open connection is busy");
    old.end_request();
    assert!(matches!(*old.phase.borrow(), Phase::Idle(_)));
    assert!(registry.admit().is_some(), "an idle one makes room again");
    assert!(matches!(*old.phase.borrow(), Phase::Closing));
}

#[test]
fn release_gives_the_place_back() {
    let registry = registry(1);
    let slot = registry.admit().expect("room");
    assert!(slot.begin_request());
    assert!(registry.admit().is_none());
    registry.release(slot.id);
    assert!(registry.admit().is_some());
}

#[test]
fn an_idle_connection_starts_its_head_with_the_first_byte_only() {
    let registry = registry(4);
    let slot = registry.admit().expect("room");
    assert!(slot.begin_request());
    slot.end_request();
    assert!(matches!(*slot.phase.borrow(), Phase::Idle(_)));
    slot.on_bytes();
    let Phase::Head(since) = *slot.phase.borrow() else {
        panic!("not reading a head: {:?}", *slot.phase.borrow());
    };
    std::thread::sleep(Duration::from_millis(5));
    // Further bytes do not restart the head's clock: a trickle is timed from its start.
    slot.on_bytes();
    assert!(matches!(*slot.phase.borrow(), Phase::Head(s) if s == since));
}

#[tokio::test]
async fn the_watchdog_gives_each_phase_its_own_limit() {
    let limits = Limits {
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_millis(200),
        max_connections: 4,
    };
    let registry = registry(4);
    let slot = registry.admit().expect("room");
    assert!(slot.begin_request());
    let started = Instant::now();
    let dog = tokio::spawn(watchdog(slot.phase.subscribe(), limits));
    tokio::time::sleep(Duration::from_millis(100)).await;
    slot.end_request();
    // Idle from 0.1 s, so closed at about 0.3 s: not at the busy phase's 30 s.
    tokio::time::timeout(Duration::from_secs(10), dog)
        .await
        .expect("the idle limit applies")
        .expect("watchdog");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_watchdog_returns_at_once_on_eviction() {
    let limits = Limits {
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        max_connections: 1,
    };
    let registry = registry(1);
    let slot = registry.admit().expect("room");
    let dog = tokio::spawn(watchdog(slot.phase.subscribe(), limits));
    let _next = registry.admit().expect("room by eviction");
    tokio::time::timeout(Duration::from_secs(10), dog)
        .await
        .expect("eviction ends the watchdog")
        .expect("watchdog");
}
