//! Abuse limits over HTTP: per-query rates and daily quotas shared by every server, the
//! enumeration watch and its flags, revocation on every server, and per-address limits.

use std::time::Duration;

use onshi::parties::Role;
use serde_json::json;

use crate::helpers::{spawn_app_with, Csv, INSURER};

fn query(number: &str) -> serde_json::Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": number, "branch": "01",
           "birth_date": "1980-04-01"})
}

async fn refusal(response: reqwest::Response) -> (u16, String, Option<u64>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body: serde_json::Value = response.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, retry_after)
}

async fn post(
    http: &reqwest::Client,
    address: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    http.post(format!("{address}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_party_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = spawn_app_with(|s| {
        s.rate_per_second = 1;
        s.rate_burst = std::num::NonZeroU32::new(3).unwrap();
    })
    .await;
    let noisy = app.party(Role::Facility, &[]).await;
    let quiet = app.party(Role::Facility, &[]).await;
    for _ in 0..3 {
        let response = app.post_json("/v1/eligibility", &noisy, &query("1")).await;
        assert_eq!(response.status(), 200);
    }
    let disclosures = app.count("disclosures").await;
    let (status, code, retry_after) =
        refusal(app.post_json("/v1/eligibility", &noisy, &query("1")).await).await;
    assert_eq!((status, code.as_str()), (429, "rate.limited"));
    assert_eq!(retry_after, Some(1));
    assert_eq!(
        app.count("disclosures").await,
        disclosures,
        "a refused request discloses nothing"
    );
    let response = app.post_json("/v1/eligibility", &quiet, &query("1")).await;
    assert_eq!(response.status(), 200);
}

/// A batch of n queries costs n tokens: it cannot buy n lookups for the price of one request.
#[tokio::test]
async fn a_batch_costs_one_token_per_query() {
    let app = spawn_app_with(|s| {
        s.rate_per_second = 1;
        s.rate_burst = std::num::NonZeroU32::new(10).unwrap();
    })
    .await;
    let claims = app.party(Role::Claims, &[]).await;
    let batch = |n: usize| json!({ "queries": vec![query("1"); n] });
    let response = app
        .post_json("/v1/eligibility/batch", &claims, &batch(8))
        .await;
    assert_eq!(response.status(), 200);
    // Two tokens are left: a batch of 5 waits for three more, at one a second.
    let disclosures = app.count("disclosures").await;
    let (status, code, retry_after) = refusal(
        app.post_json("/v1/eligibility/batch", &claims, &batch(5))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "rate.limited"));
    assert!(
        retry_after.is_some_and(|s| (2..=3).contains(&s)),
        "{retry_after:?}"
    );
    assert_eq!(app.count("disclosures").await, disclosures);

    // A batch larger than the burst is served from a full bucket, which then owes the rest.
    let big = app.party(Role::Claims, &[]).await;
    let response = app
        .post_json("/v1/eligibility/batch", &big, &batch(40))
        .await;
    assert_eq!(response.status(), 200);
    let (status, code, retry_after) =
        refusal(app.post_json("/v1/eligibility", &big, &query("1")).await).await;
    assert_eq!((status, code.as_str()), (429, "rate.limited"));
    assert!(retry_after.is_some_and(|s| s >= 25), "{retry_after:?}");
}

/// Two servers on one database share each party's bucket and daily quota.
#[tokio::test]
async fn rate_and_quota_hold_across_two_servers() {
    let app = spawn_app_with(|s| {
        s.rate_per_second = 1;
        s.rate_burst = std::num::NonZeroU32::new(4).unwrap();
    })
    .await;
    let second = app
        .another_server(|s| {
            s.rate_per_second = 1;
            s.rate_burst = std::num::NonZeroU32::new(4).unwrap();
        })
        .await;
    let desk = app.party(Role::Facility, &[]).await;
    let mut served = 0;
    for round in 0..6 {
        let address = if round % 2 == 0 {
            &app.address
        } else {
            &second
        };
        let response = post(&app.http, address, "/v1/eligibility", &desk, &query("1")).await;
        if response.status() == 200 {
            served += 1;
        } else {
            assert_eq!(refusal(response).await.1, "rate.limited");
        }
    }
    // One bucket of 4 for both servers (one lease of one token each at most on top).
    assert!((4..=5).contains(&served), "served {served} of 6 at once");

    let quota = spawn_app_with(|s| {
        s.rate_per_second = 0;
        s.daily_quota = 3;
    })
    .await;
    let other = quota
        .another_server(|s| {
            s.rate_per_second = 0;
            s.daily_quota = 3;
        })
        .await;
    let desk = quota.party(Role::Facility, &[]).await;
    for _ in 0..3 {
        let response = quota.post_json("/v1/eligibility", &desk, &query("1")).await;
        assert_eq!(response.status(), 200);
    }
    for address in [&quota.address, &other] {
        let (status, code, retry_after) =
            refusal(post(&quota.http, address, "/v1/eligibility", &desk, &query("1")).await).await;
        assert_eq!((status, code.as_str()), (429, "rate.daily_quota"));
        assert!(retry_after.is_some_and(|s| s <= 86_400));
    }
}

#[tokio::test]
async fn a_party_whose_distinct_checks_mostly_find_nothing_is_flagged_until_cleared() {
    let configure = |s: &mut onshi::config::Settings| {
        s.enumeration_misses = 5;
        s.enumeration_cooloff_seconds = std::time::Duration::from_secs(600);
    };
    let app = spawn_app_with(configure).await;
    let mut csv = Csv::new();
    for n in 0..40u64 {
        csv = csv.acquire(
            n + 1,
            (INSURER, "12", &format!("{}", 3000 + n), "01"),
            "1980-04-01",
            "2020-04-01",
        );
    }
    app.load(&csv.build()).await;
    let prober = app.party(Role::Facility, &[]).await;
    let padder = app.party(Role::Claims, &[]).await;
    let desk = app.party(Role::Claims, &[]).await;
    // Steady work: a few misses among many distinct hits is never flagged.
    let mut queries: Vec<_> = (0..40).map(|n| query(&format!("{}", 3000 + n))).collect();
    queries.extend((0..6).map(|n| query(&format!("9{n}"))));
    let response = app
        .post_json(
            "/v1/eligibility/batch",
            &desk,
            &json!({ "queries": queries }),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Copies of one valid query do not hide a walk.
    let mut padded = vec![query("3000"); 40];
    padded.extend((0..6).map(|n| query(&format!("8{n}"))));
    let response = app
        .post_json(
            "/v1/eligibility/batch",
            &padder,
            &json!({ "queries": padded }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (status, code, _) = refusal(
        app.post_json("/v1/eligibility", &padder, &query("3000"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "rate.enumeration_suspected"));
    // One missed key asked again and again is one miss; distinct ones are a walk.
    for _ in 0..10 {
        let (status, body) = app.call("/v1/eligibility", &prober, &query("70")).await;
        assert_eq!((status, body["validity"].clone()), (200, json!(4)));
    }
    for n in 1..5 {
        let (status, body) = app
            .call("/v1/eligibility", &prober, &query(&format!("7{n}")))
            .await;
        assert_eq!((status, body["validity"].clone()), (200, json!(4)));
    }
    let (status, code, retry_after) = refusal(
        app.post_json("/v1/eligibility", &prober, &query("3000"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "rate.enumeration_suspected"));
    assert_eq!(retry_after, Some(600));
    let (status, _) = app.call("/v1/eligibility", &desk, &query("3000")).await;
    assert_eq!(status, 200, "the desk is not paused");

    // The flag is in the database: a server started afterwards refuses the party too.
    let restarted = app.another_server(configure).await;
    let response = post(
        &app.http,
        &restarted,
        "/v1/eligibility",
        &prober,
        &query("3000"),
    )
    .await;
    assert_eq!(refusal(response).await.1, "rate.enumeration_suspected");
    let db = app.db().await;
    let flagged: Vec<onshi::domain::PartyId> =
        onshi::store::limits::active_flags(&db).await.unwrap();
    assert_eq!(flagged.len(), 2, "{flagged:?}");

    // An administrator clears it: both servers serve the party again, told by NOTIFY.
    let prober_id: onshi::domain::PartyId = db
        .query_one(
            "select party_id from party_flags where reason = 'enumeration' order by id desc limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // An insider with the service's own database role cannot lift it.
    let as_service = onshi::store::connect(&app.app_database_url).await.unwrap();
    assert!(
        onshi::store::limits::clear_flag(&as_service, prober_id, "insider")
            .await
            .is_err(),
        "the application role may not clear a flag"
    );
    assert!(onshi::store::limits::clear_flag(&db, prober_id, "test")
        .await
        .unwrap());
    for address in [&app.address, &restarted] {
        let served = eventually(|| async {
            post(
                &app.http,
                address,
                "/v1/eligibility",
                &prober,
                &query("3000"),
            )
            .await
            .status()
                == 200
        })
        .await;
        assert!(served, "the cleared party is served again at {address}");
    }
}

/// Polls `check` for up to 5 s.
async fn eventually<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A revocation reaches every server's credential cache, the revoking one's included, through
/// NOTIFY: long before the cache's own expiry.
#[tokio::test]
async fn a_revoked_token_stops_on_every_server_at_once() {
    let configure = |s: &mut onshi::config::Settings| {
        s.auth_cache_seconds = std::time::Duration::from_secs(3_600)
    };
    let app = spawn_app_with(configure).await;
    let second = app.another_server(configure).await;
    let admin = app.party(Role::Admin, &[]).await;
    let desk = app.party(Role::Facility, &[]).await;
    // Wait until both servers hear announcements (their caches are in use only then).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for address in [&app.address, &second] {
        let response = post(&app.http, address, "/v1/eligibility", &desk, &query("1")).await;
        assert_eq!(response.status(), 200, "cached at {address}");
    }
    let db = app.db().await;
    let desk_id: i64 = db
        .query_one("select max(id) from parties where role = 'facility'", &[])
        .await
        .unwrap()
        .get(0);
    let response = app
        .post_json(&format!("/v1/parties/{desk_id}/revoke"), &admin, &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    for address in [&app.address, &second] {
        let refused = eventually(|| async {
            post(&app.http, address, "/v1/eligibility", &desk, &query("1"))
                .await
                .status()
                == 401
        })
        .await;
        assert!(refused, "the revoked token is refused at {address}");
    }
}

/// Behind a configured trusted proxy the client is the forwarded address; from anyone else the
/// header is ignored (a caller cannot pick its own bucket). (Without trust anchors an admitted
/// challenge is a 503 `card.not_configured`; only 429 is the limit's.)
#[tokio::test]
async fn token_less_routes_are_limited_by_the_forwarded_client_only_behind_a_trusted_proxy() {
    let limited = |s: &mut onshi::config::Settings| {
        s.rate_per_second = 1;
        s.rate_burst = std::num::NonZeroU32::new(1).unwrap();
    };
    let app = spawn_app_with(|s| {
        limited(s);
        s.trusted_proxies =
            onshi::api::limits::address::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let challenge = |forwarded: &'static str| {
        app.http
            .post(format!("{}/v1/self/challenges", app.address))
            .header("X-Forwarded-For", forwarded)
            .send()
    };
    assert!(challenge("198.51.100.1").await.unwrap().status() != 429);
    assert_eq!(challenge("198.51.100.1").await.unwrap().status(), 429);
    assert!(challenge("198.51.100.2").await.unwrap().status() != 429);
    // The same /64 is one client.
    assert!(challenge("2001:db8:0:1::1").await.unwrap().status() != 429);
    assert_eq!(challenge("2001:db8:0:1::2").await.unwrap().status(), 429);

    let untrusting = spawn_app_with(limited).await;
    let challenge = |forwarded: &'static str| {
        untrusting
            .http
            .post(format!("{}/v1/self/challenges", untrusting.address))
            .header("X-Forwarded-For", forwarded)
            .send()
    };
    assert!(challenge("198.51.100.1").await.unwrap().status() != 429);
    assert_eq!(
        challenge("198.51.100.2").await.unwrap().status(),
        429,
        "without a trusted proxy the header chooses nothing"
    );
}
