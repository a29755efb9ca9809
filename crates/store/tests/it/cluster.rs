//! Node reports and leases: the last report of each node is kept with its
//! heartbeat time, silent nodes are forgotten, and a lease has one holder
//! at a time however many nodes race for it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use patchbay_store::{LEADER_LEASE, NodeReport, RateSlot, Store};

use crate::{LONG, now_ms, open, poll};

fn report(id: &str, in_flight: u64) -> NodeReport {
    NodeReport {
        id: id.into(),
        version: "1.2.3".into(),
        address: Some("127.0.0.1:8080".into()),
        config_version: "cfg-1".into(),
        started_at: now_ms(),
        runs_in_flight: in_flight,
    }
}

#[tokio::test]
async fn a_node_report_is_kept_with_its_last_heartbeat() {
    let (store, _keep) = open().await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    store.heartbeat(&report("node-b", 0)).await.unwrap();
    store.heartbeat(&report("node-a", 2)).await.unwrap();
    let again = NodeReport {
        config_version: "cfg-2".into(),
        address: None,
        ..report("node-a", 5)
    };
    store.heartbeat(&again).await.unwrap();

    let nodes = store.nodes().await.unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n.report.id.as_str()).collect();
    assert_eq!(ids, ["node-a", "node-b"]);
    assert_eq!(nodes[0].report, again);
    assert!(nodes[0].last_heartbeat >= before, "{nodes:?}");

    // Nobody is silent since a second ago; both are silent since later on.
    assert_eq!(store.forget_nodes(before).await.unwrap(), 0);
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.forget_nodes(later).await.unwrap(), 2);
    assert!(store.nodes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_dropped() {
    let (store, _keep) = open().await;
    assert_eq!(store.lease_holder(LEADER_LEASE).await.unwrap(), None);
    let short = Duration::from_millis(300);
    assert!(store.hold_lease(LEADER_LEASE, "a", short).await.unwrap());
    assert!(!store.hold_lease(LEADER_LEASE, "b", LONG).await.unwrap());
    // The holder keeps it by taking it again.
    assert!(store.hold_lease(LEADER_LEASE, "a", short).await.unwrap());
    assert_eq!(
        store.lease_holder(LEADER_LEASE).await.unwrap().as_deref(),
        Some("a")
    );
    // Another name is another lease.
    assert!(store.hold_lease("other", "b", LONG).await.unwrap());

    // Expired, it goes to whoever asks first, and the old holder is out.
    poll(Duration::from_secs(5), || async {
        store
            .hold_lease(LEADER_LEASE, "b", LONG)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    assert!(!store.hold_lease(LEADER_LEASE, "a", short).await.unwrap());
    assert_eq!(
        store.lease_holder(LEADER_LEASE).await.unwrap().as_deref(),
        Some("b")
    );

    // Dropping is the holder's alone; once dropped, it is free at once.
    store.drop_lease(LEADER_LEASE, "a").await.unwrap();
    assert!(!store.hold_lease(LEADER_LEASE, "a", short).await.unwrap());
    store.drop_lease(LEADER_LEASE, "b").await.unwrap();
    assert_eq!(store.lease_holder(LEADER_LEASE).await.unwrap(), None);
    assert!(store.hold_lease(LEADER_LEASE, "a", short).await.unwrap());
}

#[tokio::test]
async fn of_many_nodes_racing_for_a_lease_exactly_one_gets_it() {
    let (store, _keep) = open().await;
    let store: Arc<dyn Store> = Arc::from(store);
    for round in 0..5 {
        let name = format!("race-{round}");
        let racers = (0..8).map(|i| {
            let store = store.clone();
            let name = name.clone();
            tokio::spawn(async move {
                store
                    .hold_lease(&name, &format!("node-{i}"), LONG)
                    .await
                    .unwrap()
            })
        });
        let won = futures::future::join_all(racers)
            .await
            .into_iter()
            .filter(|held| *held.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_rate_limit_hands_out_its_burst_then_reserves_one_slot_per_interval() {
    let (store, _keep) = open().await;
    let interval = Duration::from_millis(200);
    let now = Duration::ZERO;
    let later = Duration::from_secs(5);
    assert_eq!(
        store.reserve_rate("crm/", interval, 2, now).await.unwrap(),
        RateSlot::Reserved(Duration::ZERO)
    );
    assert_eq!(
        store.reserve_rate("crm/", interval, 2, now).await.unwrap(),
        RateSlot::Reserved(Duration::ZERO)
    );
    // The burst is spent: not now, and nothing is reserved by asking.
    let RateSlot::Refused(wait) = store.reserve_rate("crm/", interval, 2, now).await.unwrap()
    else {
        panic!("a third slot at once");
    };
    assert!(wait > Duration::ZERO && wait <= interval, "{wait:?}");
    // A caller that would wait is given the next slot, and the one after
    // gets the slot after it.
    let RateSlot::Reserved(first) = store
        .reserve_rate("crm/", interval, 2, later)
        .await
        .unwrap()
    else {
        panic!("no slot within 5 s");
    };
    let RateSlot::Reserved(second) = store
        .reserve_rate("crm/", interval, 2, later)
        .await
        .unwrap()
    else {
        panic!("no slot within 5 s");
    };
    assert!(first > Duration::ZERO && first <= interval, "{first:?}");
    let apart = second - first;
    assert!(
        apart > interval - Duration::from_millis(20) && apart <= interval,
        "{first:?} then {second:?}"
    );
    // Beyond the horizon nothing is reserved.
    assert!(matches!(
        store
            .reserve_rate("crm/", interval, 2, Duration::from_millis(100))
            .await
            .unwrap(),
        RateSlot::Refused(_)
    ));
    // Another key has a budget of its own.
    assert_eq!(
        store
            .reserve_rate("crm/tenant-b", interval, 2, now)
            .await
            .unwrap(),
        RateSlot::Reserved(Duration::ZERO)
    );

    // Idle keys are forgotten; a busy one is not.
    let in_a_minute = Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(
        store
            .forget_rates(Utc::now() - chrono::Duration::seconds(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.forget_rates(in_a_minute).await.unwrap(), 2);
    assert_eq!(
        store.reserve_rate("crm/", interval, 2, now).await.unwrap(),
        RateSlot::Reserved(Duration::ZERO)
    );
}

/// However many callers race, no more slots are handed out than the
/// pacing allows over the time they raced.
#[tokio::test]
async fn racing_callers_never_get_more_than_the_rate() {
    let (store, _keep) = open().await;
    let store: Arc<dyn Store> = Arc::from(store);
    let interval = Duration::from_millis(20);
    let started = std::time::Instant::now();
    let racers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut taken = 0u32;
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while std::time::Instant::now() < deadline {
                match store
                    .reserve_rate("race/", interval, 1, Duration::ZERO)
                    .await
                    .unwrap()
                {
                    RateSlot::Reserved(wait) => {
                        assert_eq!(wait, Duration::ZERO);
                        taken += 1;
                    }
                    RateSlot::Refused(wait) => {
                        tokio::time::sleep(wait.min(Duration::from_millis(5))).await
                    }
                }
            }
            taken
        })
    });
    let taken: u32 = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    let elapsed = started.elapsed();
    // One at the start, then one per interval.
    let allowed = 1 + (elapsed.as_micros() / interval.as_micros()) as u32;
    assert!(
        taken <= allowed,
        "{taken} slots in {elapsed:?} (at most {allowed})"
    );
    assert!(
        taken >= allowed / 2,
        "{taken} slots in {elapsed:?}: pacing too slow"
    );
}

#[tokio::test]
async fn the_last_published_configuration_is_kept_with_its_time() {
    let (store, _keep) = open().await;
    assert_eq!(store.published_config().await.unwrap(), None);
    store.publish_config("v1", "node-a").await.unwrap();
    let first = store.published_config().await.unwrap().unwrap();
    assert_eq!(
        (first.version.as_str(), first.node.as_str()),
        ("v1", "node-a")
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    store.publish_config("v1", "node-b").await.unwrap();
    let second = store.published_config().await.unwrap().unwrap();
    assert_eq!(
        (second.version.as_str(), second.node.as_str()),
        ("v1", "node-b")
    );
    // The same version published again is a new publication.
    assert!(
        second.published_at > first.published_at,
        "{first:?} {second:?}"
    );
}

#[tokio::test]
async fn breaker_openings_keep_the_latest_end_until_it_passes() {
    let (store, _keep) = open().await;
    assert!(store.open_breakers().await.unwrap().is_empty());
    let soon = now_ms() + chrono::Duration::milliseconds(300);
    let later = now_ms() + chrono::Duration::seconds(60);
    store.open_breaker("crm", soon, "node-a").await.unwrap();
    store.open_breaker("erp", later, "node-b").await.unwrap();
    // An earlier end does not shorten an opening; a later one extends it.
    store.open_breaker("erp", soon, "node-c").await.unwrap();
    let open = store.open_breakers().await.unwrap();
    let seen: Vec<(&str, &str)> = open
        .iter()
        .map(|o| (o.connector.as_str(), o.node.as_str()))
        .collect();
    assert_eq!(seen, [("crm", "node-a"), ("erp", "node-b")]);
    assert_eq!(open[1].until, later);
    poll(Duration::from_secs(5), || async {
        let open = store.open_breakers().await.unwrap();
        (open.len() == 1).then_some(())
    })
    .await;
    assert_eq!(store.open_breakers().await.unwrap()[0].connector, "erp");
}

#[tokio::test]
async fn a_call_slot_is_held_until_given_back_or_its_hold_runs_out() {
    let (store, _keep) = open().await;
    let first = store.take_slot("crm", 2, "a", LONG).await.unwrap();
    let second = store.take_slot("crm", 2, "b", LONG).await.unwrap();
    let (Some(first), Some(second)) = (first, second) else {
        panic!("two free slots: {first:?} {second:?}");
    };
    assert_ne!(first, second);
    assert!(first < 2 && second < 2);
    assert_eq!(store.take_slot("crm", 2, "c", LONG).await.unwrap(), None);
    // Another name has slots of its own.
    assert!(
        store
            .take_slot("erp", 1, "c", LONG)
            .await
            .unwrap()
            .is_some()
    );

    // Only the holder gives a slot back.
    store.release_slot("crm", first, "b").await.unwrap();
    assert_eq!(store.take_slot("crm", 2, "c", LONG).await.unwrap(), None);
    store.release_slot("crm", first, "a").await.unwrap();
    assert_eq!(
        store.take_slot("crm", 2, "c", LONG).await.unwrap(),
        Some(first)
    );

    // A hold that runs out frees its slot, and the late holder's release
    // leaves the new holder's alone.
    let short = Duration::from_millis(200);
    let lone = store.take_slot("sms", 1, "a", short).await.unwrap();
    assert_eq!(lone, Some(0));
    assert_eq!(store.take_slot("sms", 1, "b", LONG).await.unwrap(), None);
    let taken = poll(Duration::from_secs(5), || {
        let store = &store;
        async move { store.take_slot("sms", 1, "b", LONG).await.unwrap() }
    })
    .await;
    assert_eq!(taken, 0);
    store.release_slot("sms", 0, "a").await.unwrap();
    assert_eq!(store.take_slot("sms", 1, "c", LONG).await.unwrap(), None);
}

/// However many callers race for a name's slots, no more than its limit
/// hold one at once.
#[tokio::test]
async fn racing_callers_never_hold_more_slots_than_the_limit() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const LIMIT: u32 = 3;
    let (store, _keep) = open().await;
    let store: Arc<dyn Store> = Arc::from(store);
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let racers = (0..8).map(|racer| {
        let (store, holding, most) = (store.clone(), holding.clone(), most.clone());
        tokio::spawn(async move {
            let holder = format!("racer-{racer}");
            let mut taken = 0u32;
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while std::time::Instant::now() < deadline {
                match store.take_slot("race", LIMIT, &holder, LONG).await.unwrap() {
                    Some(slot) => {
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        holding.fetch_sub(1, Ordering::SeqCst);
                        store.release_slot("race", slot, &holder).await.unwrap();
                        taken += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
            taken
        })
    });
    let taken: u32 = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    let most = most.load(Ordering::SeqCst);
    assert!(most <= LIMIT as usize, "{most} held at once");
    assert_eq!(most, LIMIT as usize, "the slots were all in use at times");
    assert!(taken >= 20, "{taken} slots taken in 500 ms");
}
