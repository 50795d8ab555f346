//! `xtask capacity`: the DynamoDB capacity model (`make capacity`).
//!
//! One second of a load profile is simulated over a population of real records: every
//! item and index entry is built by the store's own conversions (`device_to_item`,
//! `grant_to_item`, ...), so every partition key and every item size is the one the code
//! would write. Each user action is then charged the requests the code makes for it (the
//! same sequences the integration tests assert), at DynamoDB's on-demand rules:
//!
//! - a write costs one unit per started KiB of the larger of the old and new item, twice
//!   inside a transaction (a transaction's condition check too); a failed conditional
//!   write costs the same;
//! - a strongly consistent read costs one unit per started 4 KiB, an eventually
//!   consistent one half of that; a `Query` is charged on the bytes it reads;
//! - an index entry (keys only) is written when its item is created, and deleted when TTL
//!   removes the item (free of charge, but it still uses the index partition's
//!   throughput, so it is counted in the per-key load and left out of the bill);
//! - one partition key takes at most 1,000 write and 3,000 read units a second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use device_flow::domain::{
    Approval, Charset, ClientId, ClientKind, ClientSecret, DeviceAuthorization, DeviceCode,
    DeviceDetails, Grant, GrantId, GrantType, OAuthClient, RefreshPolicy, RefreshRecord,
    RefreshToken, ScopeSet, Terms, UserCode, UserCodeFormat,
};
use device_flow::store::INDEX_SHARDS;
use device_flow::store::item::{self, Item, item_size};
use device_flow::store::table::{
    CLIENT_INDEX_PARTITION_KEY, CLIENT_INDEX_SORT_KEY, LIST_INDEX_PARTITION_KEY,
    LIST_INDEX_SORT_KEY, PARTITION_KEY, SORT_KEY,
};
use device_flow::time::Timestamp;

mod report;

pub use report::report;

/// DynamoDB's per-partition limits (units per second).
pub const WRITE_LIMIT: f64 = 1000.0;
pub const READ_LIMIT: f64 = 3000.0;
/// On-demand prices in us-east-1, dollars per million request units.
const WRITE_PRICE: f64 = 0.625;
const READ_PRICE: f64 = 0.125;
const SECONDS_PER_MONTH: f64 = 30.0 * 86_400.0;
/// A table's default on-demand throughput quota (units per second; adjustable).
const TABLE_QUOTA: f64 = 40_000.0;
/// API Gateway's default account throttle for HTTP APIs, requests per second.
const API_GATEWAY_QUOTA: f64 = 10_000.0;
/// Lambda's default concurrency per account and Region.
const LAMBDA_QUOTA: f64 = 1_000.0;

/// The load to model.
#[derive(Debug, Clone)]
pub struct Profile {
    pub logins_per_second: f64,
    /// Pending polls per login before the one that gets the token.
    pub polls_per_login: f64,
    /// Share of logins by confidential clients (their polls authenticate).
    pub confidential_share: f64,
    /// How many clients share the logins; the first takes `top_client_share` of them.
    pub clients: usize,
    pub top_client_share: f64,
    /// Share of logins that ask for `offline_access` (a refresh token).
    pub offline_share: f64,
    pub refreshes_per_second: f64,
    pub admin_pages_per_minute: f64,
    pub jwks_requests_per_second: f64,
    /// Share of look-ups that come from one address (a carrier-grade NAT).
    pub nat_share: f64,
    /// Whether the per-address look-up budget is on (`LOOKUP_FAILURES_PER_IP`).
    pub per_ip_budget: bool,
    /// Warm Lambda instances per function, each with its own caches.
    pub instances: f64,
    /// `CLIENT_CACHE_SECONDS`.
    pub client_cache_seconds: f64,
    /// Milliseconds a request keeps its Lambda instance busy.
    pub request_ms: f64,
    /// The user codes' format (`--user-code-format letters:8`, `digits:9`, ...).
    pub user_code_format: UserCodeFormat,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            logins_per_second: 10_000.0,
            polls_per_login: 6.0,
            confidential_share: 0.5,
            clients: 20,
            top_client_share: 0.9,
            offline_share: 1.0,
            refreshes_per_second: 10_000.0,
            admin_pages_per_minute: 60.0,
            jwks_requests_per_second: 1_000.0,
            nat_share: 0.01,
            per_ip_budget: true,
            instances: 1_000.0,
            client_cache_seconds: 5.0,
            request_ms: 15.0,
            user_code_format: UserCodeFormat::DEFAULT,
        }
    }
}

impl Profile {
    /// Reads `--name value` pairs over the defaults.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut profile = Self::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| format!("{flag}: not a number: {value}"))
            };
            let share = || {
                number().and_then(|n| {
                    (n <= 1.0)
                        .then_some(n)
                        .ok_or_else(|| format!("{flag}: a share is 0 to 1"))
                })
            };
            match flag.as_str() {
                "--logins-per-second" => profile.logins_per_second = number()?,
                "--polls-per-login" => profile.polls_per_login = number()?,
                "--confidential-share" => profile.confidential_share = share()?,
                "--clients" => profile.clients = (number()? as usize).max(1),
                "--top-client-share" => profile.top_client_share = share()?,
                "--offline-share" => profile.offline_share = share()?,
                "--refreshes-per-second" => profile.refreshes_per_second = number()?,
                "--admin-pages-per-minute" => profile.admin_pages_per_minute = number()?,
                "--jwks-requests-per-second" => profile.jwks_requests_per_second = number()?,
                "--nat-share" => profile.nat_share = share()?,
                "--per-ip-budget" => profile.per_ip_budget = number()? > 0.0,
                "--instances" => profile.instances = number()?.max(1.0),
                "--client-cache-seconds" => profile.client_cache_seconds = number()?,
                "--request-ms" => profile.request_ms = number()?,
                "--user-code-format" => {
                    let (charset, length) = value.split_once(':').unwrap_or((value, ""));
                    profile.user_code_format = Charset::parse(charset)
                        .and_then(|c| UserCodeFormat::new(c, length.parse().ok()).ok())
                        .ok_or_else(|| {
                            format!("{flag}: letters:8 to letters:12, or digits:9 to digits:12")
                        })?;
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(profile)
    }
}

/// Where units are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Table,
    Gsi1,
    Gsi2,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Gsi1 => "gsi1",
            Self::Gsi2 => "gsi2",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Units {
    write: f64,
    read: f64,
    /// Units that use throughput but are not billed (TTL deletions).
    free_write: f64,
}

/// What one second of the profile asks of DynamoDB.
#[derive(Debug, Default)]
pub struct Load {
    keys: HashMap<(Target, String), Units>,
    /// DynamoDB requests a second, by where they go.
    requests: HashMap<Target, f64>,
    /// HTTP requests the functions serve.
    http_requests: f64,
    /// User codes live at once at worst (each for its whole lifetime), and the chance that
    /// a draw meets one of them (an extra transaction).
    live_codes: f64,
    collision: f64,
}

impl Load {
    fn request(&mut self, target: Target, count: f64) {
        *self.requests.entry(target).or_default() += count;
    }

    fn write(&mut self, target: Target, key: &str, units: f64) {
        self.keys.entry((target, key.to_owned())).or_default().write += units;
    }

    fn free_write(&mut self, target: Target, key: &str, units: f64) {
        self.keys
            .entry((target, key.to_owned()))
            .or_default()
            .free_write += units;
    }

    fn read(&mut self, target: Target, key: &str, units: f64) {
        self.keys.entry((target, key.to_owned())).or_default().read += units;
    }

    /// The busiest key of `target` (or of all) by `measure`.
    fn busiest(
        &self,
        target: Option<Target>,
        measure: impl Fn(&Units) -> f64,
    ) -> Option<(Target, &str, f64)> {
        self.keys
            .iter()
            .filter(|((t, _), _)| target.is_none_or(|target| *t == target))
            .map(|((t, key), units)| (*t, key.as_str(), measure(units)))
            .max_by(|a, b| a.2.total_cmp(&b.2).then_with(|| b.1.cmp(a.1)))
    }

    fn total(&self, target: Target, measure: impl Fn(&Units) -> f64) -> f64 {
        self.keys
            .iter()
            .filter(|((t, _), _)| *t == target)
            .map(|(_, units)| measure(units))
            .sum()
    }
}

fn write_units(item: &Item) -> f64 {
    item_size(item).div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

fn pk(item: &Item) -> &str {
    item[PARTITION_KEY]
        .as_s()
        .map(String::as_str)
        .unwrap_or_default()
}

/// The keys-only entry an index holds of `item`, with its partition key.
fn index_entry(item: &Item, target: Target) -> Option<(String, Item)> {
    let (partition, sort) = match target {
        Target::Gsi1 => (LIST_INDEX_PARTITION_KEY, LIST_INDEX_SORT_KEY),
        Target::Gsi2 => (CLIENT_INDEX_PARTITION_KEY, CLIENT_INDEX_SORT_KEY),
        Target::Table => return None,
    };
    let entry: Item = [PARTITION_KEY, SORT_KEY, partition, sort]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), item.get(name)?.clone())))
        .collect();
    (entry.len() == 4).then(|| {
        (
            entry[partition].as_s().ok().cloned().unwrap_or_default(),
            entry,
        )
    })
}

/// Charges a new item: its write (twice in a transaction) and its index entries, which
/// TTL deletes again later (as often, at steady state).
fn create(load: &mut Load, item: &Item, transactional: bool, weight: f64) {
    let factor = if transactional { 2.0 } else { 1.0 };
    load.write(Target::Table, pk(item), write_units(item) * factor * weight);
    for target in [Target::Gsi1, Target::Gsi2] {
        if let Some((partition, entry)) = index_entry(item, target) {
            load.write(target, &partition, write_units(&entry) * weight);
            load.free_write(target, &partition, write_units(&entry) * weight);
        }
    }
}

/// Charges a write to an existing item that changes no index key (every write after
/// creation in this design: the indexes hold keys only).
fn update(load: &mut Load, before: &Item, after: &Item, transactional: bool, weight: f64) {
    let factor = if transactional { 2.0 } else { 1.0 };
    let units = write_units(before).max(write_units(after));
    load.write(Target::Table, pk(after), units * factor * weight);
}

/// The simulated clients: the first takes `top_client_share` of the logins.
fn clients(profile: &Profile, now: Timestamp) -> Vec<(OAuthClient, f64)> {
    let others = profile.clients.saturating_sub(1).max(1) as f64;
    (0..profile.clients)
        .map(|i| {
            let share = if profile.clients == 1 {
                1.0
            } else if i == 0 {
                profile.top_client_share
            } else {
                (1.0 - profile.top_client_share) / others
            };
            let client = OAuthClient {
                allowed_resources: Vec::new(),
                user_code_format: None,
                id: ClientId::parse(&format!("client-{i:03}")).unwrap_or_else(|| unreachable!()),
                name: format!("Streaming app {i}"),
                kind: ClientKind::Confidential {
                    secret_hash: ClientSecret::generate().hash(),
                },
                allowed_grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
                allowed_scopes: ScopeSet::parse("read write offline_access").unwrap_or_default(),
                overrides: Default::default(),
                created_at: now,
                updated_at: now,
                resource_server_audiences: Vec::new(),
                generation: device_flow::domain::ClientGeneration::generate(),
                deletion: None,
            };
            (client, share)
        })
        .collect()
}

/// How many logins of the second are simulated one by one: all of them, up to this many
/// (past it, each stands for several real ones; keys are random, so a sample this size
/// spreads over the shards as the real population does).
const MAX_SAMPLE: usize = 50_000;

/// Models one second of `profile`.
pub fn model(profile: &Profile) -> Load {
    let mut load = Load::default();
    let now = Timestamp::from_millis(1_790_000_000_000);
    let clients = clients(profile, now);
    let instances = profile.instances;
    let ttl = profile.client_cache_seconds;
    let sample = (profile.logins_per_second.ceil() as usize).clamp(1, MAX_SAMPLE);
    let per_login = profile.logins_per_second / sample as f64;
    let details = DeviceDetails::new(
        Some("203.0.113.77"),
        Some("Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 StreamingApp/4.2"),
    );
    let mut grants = Vec::new();
    load.live_codes = profile.logins_per_second * 600.0;
    load.collision = (load.live_codes / profile.user_code_format.space()).min(0.5);
    for n in 0..sample {
        let point = (n as f64 + 0.5) / sample as f64;
        let (client, _) = pick(&clients, point);
        let offline = point <= profile.offline_share;
        let terms = Terms {
            resources: Vec::new(),
            user_code_format: Default::default(),
            scope: ScopeSet::parse(if offline {
                "read write offline_access"
            } else {
                "read write"
            })
            .unwrap_or_default(),
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            access_token_lifetime: Duration::from_secs(3600),
            refresh: offline.then_some(RefreshPolicy {
                idle: Duration::from_secs(30 * 86_400),
                absolute: Duration::from_secs(365 * 86_400),
            }),
        };
        let mut record = DeviceAuthorization::new(
            DeviceCode::generate().id(),
            client,
            &terms,
            UserCode::generate_in(profile.user_code_format),
            now,
        );
        record.device = details.clone();
        let retention = Duration::from_secs(86_400);

        // Device authorization: one transaction, the record and its user-code claim, and
        // again for each draw that meets a live code.
        let draws = per_login / (1.0 - load.collision);
        let created = item::device_to_item(&record, retention);
        create(&mut load, &created, true, draws);
        create(&mut load, &item::user_code_claim_item(&record), true, draws);
        load.request(Target::Table, draws);

        // Look-up: take from the account's (and the address's) budget, read the claim
        // and the record, give back what was taken.
        let account = format!("account-{n:08x}");
        let window = now.as_secs() / 600 * 600;
        let ip = if point <= profile.nat_share {
            "100.64.0.1".to_owned()
        } else {
            format!("198.51.{}.{}", n / 256 % 256, n % 256)
        };
        let mut budgets = vec![item::rate_key("ACCOUNT", window, &account)];
        if profile.per_ip_budget {
            budgets.push(item::rate_key("IP", window, &ip));
        }
        for budget in &budgets {
            let mut counter = budget.clone();
            counter.insert(
                "failures".into(),
                aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
            );
            counter.insert(
                "ttl".into(),
                aws_sdk_dynamodb::types::AttributeValue::N(window.to_string()),
            );
            // Taken, then given back: two updates.
            update(&mut load, &counter, &counter, false, 2.0 * per_login);
            load.request(Target::Table, 2.0 * per_login);
        }
        let claim = item::user_code_claim_item(&record);
        load.read(
            Target::Table,
            pk(&claim),
            read_units(item_size(&claim), true) * per_login,
        );
        load.read(
            Target::Table,
            pk(&created),
            read_units(item_size(&created), true) * per_login,
        );
        load.request(Target::Table, 2.0 * per_login);

        // Pending polls: one conditional update each.
        let mut polled = record.clone();
        polled.last_polled_at = Some(now.plus(Duration::from_secs(5)));
        let polled_item = item::device_to_item(&polled, retention);
        update(
            &mut load,
            &created,
            &polled_item,
            false,
            profile.polls_per_login * per_login,
        );
        load.request(Target::Table, profile.polls_per_login * per_login);

        // Approval: one conditional update.
        let approval = Approval {
            account_id: account.clone(),
            approved_at: now.plus(Duration::from_secs(20)),
            session_id: Some("s-0123456789abcdef".into()),
            profile: Default::default(),
        };
        let mut approved = polled.clone();
        approved.state = device_flow::domain::DeviceState::Approved(approval.clone());
        let approved_item = item::device_to_item(&approved, retention);
        update(&mut load, &polled_item, &approved_item, false, per_login);
        load.request(Target::Table, per_login);

        // The poll that gets the token: its poll update fails its condition (charged as a
        // write), then one transaction consumes the record and writes the grant and the
        // first refresh token. The client is checked from the instance's cache.
        update(&mut load, &approved_item, &approved_item, false, per_login);
        let grant = Grant::from_login(GrantId::generate(), &approved, &approval, now);
        let mut consumed = approved.clone();
        consumed.state = device_flow::domain::DeviceState::Consumed {
            approval: approval.clone(),
            consumed_at: now,
            grant_id: Some(grant.id.clone()),
        };
        update(
            &mut load,
            &approved_item,
            &item::device_to_item(&consumed, retention),
            true,
            per_login,
        );
        let grant_item = item::grant_to_item(&grant, Duration::from_secs(7 * 86_400));
        create(&mut load, &grant_item, true, per_login);
        if let Some(expires_at) = grant.refresh_expiry(now) {
            let token = RefreshToken::generate(&grant.id);
            let refresh = RefreshRecord {
                hash: token.hash(),
                grant_id: grant.id.clone(),
                client_id: grant.client_id.clone(),
                issued_at: now,
                expires_at,
                rotated_at: None,
            };
            create(
                &mut load,
                &item::refresh_to_item(&refresh, Duration::ZERO),
                true,
                per_login,
            );
            grants.push((
                grant_item.clone(),
                item::refresh_to_item(&refresh, Duration::ZERO),
            ));
        }
        load.request(Target::Table, 2.0 * per_login);
        load.http_requests += (profile.polls_per_login + 4.0) * per_login;
    }

    // Client reads: each instance of the two functions that read clients (device
    // authorization; token: polls and refreshes) reads each client once per cache
    // lifetime, never more often than requests come.
    for (client, share) in &clients {
        let item = item::client_to_item(client);
        let demand = profile.logins_per_second
            * share
            * (1.0 + profile.confidential_share * (profile.polls_per_login + 1.0))
            + profile.refreshes_per_second * share;
        let reads = if ttl > 0.0 {
            demand.min(2.0 * instances / ttl)
        } else {
            demand
        };
        load.read(
            Target::Table,
            pk(&item),
            read_units(item_size(&item), true) * reads,
        );
        load.request(Target::Table, reads);
    }

    // Refreshes: one strongly consistent batch read of the grant and the token, one
    // transaction rotating the token, storing the new one and renewing the grant.
    if !grants.is_empty() {
        let per_refresh = profile.refreshes_per_second / grants.len() as f64;
        for (grant_item, refresh_item) in &grants {
            load.read(
                Target::Table,
                pk(grant_item),
                read_units(item_size(grant_item), true) * per_refresh,
            );
            load.read(
                Target::Table,
                pk(refresh_item),
                read_units(item_size(refresh_item), true) * per_refresh,
            );
            update(&mut load, refresh_item, refresh_item, true, per_refresh);
            create(&mut load, refresh_item, true, per_refresh);
            update(&mut load, grant_item, grant_item, true, per_refresh);
        }
        load.request(Target::Table, 2.0 * profile.refreshes_per_second);
        load.http_requests += profile.refreshes_per_second;
    }

    // Admin pages of every device authorization: a Query per shard (a fiftieth of a page
    // each, in keys), then one batch read of the page's fifty records.
    let pages = profile.admin_pages_per_minute / 60.0;
    let sample_record = item::device_to_item(
        &DeviceAuthorization::new(
            DeviceCode::generate().id(),
            &clients[0].0,
            &Terms {
                resources: Vec::new(),
                user_code_format: Default::default(),
                scope: ScopeSet::parse("read").unwrap_or_default(),
                lifetime: Duration::from_secs(600),
                interval: Duration::from_secs(5),
                access_token_lifetime: Duration::from_secs(3600),
                refresh: None,
            },
            UserCode::generate(),
            now,
        ),
        Duration::ZERO,
    );
    if let Some((_, entry)) = index_entry(&sample_record, Target::Gsi1) {
        for shard in 0..INDEX_SHARDS {
            let bytes = item_size(&entry) * 50;
            load.read(
                Target::Gsi1,
                &item::devices_partition(shard),
                read_units(bytes, false) * pages,
            );
        }
    }
    for listed in 0..50 {
        load.read(
            Target::Table,
            &format!("DEVICE#<listed record {listed}>"),
            read_units(item_size(&sample_record), false) * pages,
        );
    }
    load.request(Target::Gsi1, f64::from(INDEX_SHARDS) * pages);
    load.request(Target::Table, pages);
    load.http_requests += pages;

    // The published key set, read by discovery once per instance every 10 seconds.
    let published = std::collections::BTreeMap::from([
        (
            "2026-11".to_owned(),
            Timestamp::from_millis(1_790_000_000_000),
        ),
        ("2026-05".to_owned(), Timestamp::from_millis(0)),
    ]);
    let jwks = item::jwks_item(&jwks_document(), 2, &published);
    let reads = profile.jwks_requests_per_second.min(instances / 10.0);
    load.read(
        Target::Table,
        pk(&jwks),
        read_units(item_size(&jwks), true) * reads,
    );
    load.request(Target::Table, reads);
    load.http_requests += profile.jwks_requests_per_second;
    load
}

fn pick<T>(weighted: &[(T, f64)], point: f64) -> (&T, f64) {
    let mut sum = 0.0;
    for (value, share) in weighted {
        sum += share;
        if point <= sum {
            return (value, *share);
        }
    }
    let (value, share) = &weighted[weighted.len() - 1];
    (value, *share)
}

/// A key set of two RSA-2048 keys, the size a rotation publishes.
fn jwks_document() -> String {
    let key = |kid: &str| {
        format!(
            r#"{{"kty":"RSA","use":"sig","alg":"RS256","kid":"{kid}","n":"{}","e":"AQAB"}}"#,
            "x".repeat(342)
        )
    };
    format!(r#"{{"keys":[{},{}]}}"#, key("2026-11"), key("2026-05"))
}

#[cfg(test)]
/// The busiest key's write and read units a second.
pub fn busiest(load: &Load) -> (f64, f64) {
    (
        load.busiest(None, |u| u.write).map_or(0.0, |b| b.2),
        load.busiest(None, |u| u.read).map_or(0.0, |b| b.2),
    )
}

/// `xtask capacity [--option value]...`
pub fn run(args: &[String]) -> Result<(), String> {
    let profile = Profile::from_args(args)?;
    let load = model(&profile);
    println!("{}", report(&profile, &load));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_two_lines(report: &str) -> Vec<&str> {
        report.lines().rev().take(2).collect()
    }

    #[test]
    fn a_small_profile_reports_its_busiest_keys() {
        let args: Vec<String> = [
            "--logins-per-second",
            "10",
            "--refreshes-per-second",
            "5",
            "--instances",
            "4",
        ]
        .map(String::from)
        .to_vec();
        let profile = Profile::from_args(&args).unwrap();
        let text = report(&profile, &model(&profile));
        let lines = last_two_lines(&text);
        assert!(lines[1].starts_with("busiest partition key: "), "{text}");
        assert!(lines[1].ends_with(" write units/s (limit 1000)"), "{text}");
        assert!(lines[0].ends_with(" read units/s (limit 3000)"), "{text}");
        assert!(Profile::from_args(&["--nope".into(), "1".into()]).is_err());
        assert!(Profile::from_args(&["--nat-share".into(), "2".into()]).is_err());
    }

    #[test]
    fn the_default_profile_holds_ten_thousand_logins_a_second_with_no_key_over_its_limit() {
        let profile = Profile::default();
        let load = model(&profile);
        let (write, read) = busiest(&load);
        // A few hundred write units a second at most (a partition takes 1,000).
        assert!(write < 400.0, "{}", report(&profile, &load));
        assert!(read < READ_LIMIT / 2.0, "{}", report(&profile, &load));
        // A pending poll is one base-table write unit and nothing else.
        let polls = profile.logins_per_second * profile.polls_per_login;
        let index_writes =
            load.total(Target::Gsi1, |u| u.write) + load.total(Target::Gsi2, |u| u.write);
        assert!(
            index_writes < 5.0 * profile.logins_per_second,
            "index writes grow with logins, not with polls ({polls} polls/s)"
        );
    }
}
