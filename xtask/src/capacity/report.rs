//! The capacity model's report: per table and index, units a second, the busiest
//! partition key against its limits, the monthly bill.

use super::*;

/// The report, ending with the two lines a script reads.
pub fn report(profile: &Profile, load: &Load) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Load profile: {profile:?}");
    let _ = writeln!(
        out,
        "\n{:<6} {:>10} {:>10} {:>10} {:>10}   busiest partition key (write units/s; read units/s)",
        "where", "requests/s", "write u/s", "read u/s", "$/month"
    );
    let mut bill = 0.0;
    for target in [Target::Table, Target::Gsi1, Target::Gsi2] {
        let write = load.total(target, |u| u.write);
        let read = load.total(target, |u| u.read);
        let cost = (write * WRITE_PRICE + read * READ_PRICE) * SECONDS_PER_MONTH / 1e6;
        bill += cost;
        let busiest_write = load
            .busiest(Some(target), |u| u.write)
            .map_or(String::new(), |(_, key, units)| format!("{key} {units:.0}"));
        let busiest_read = load
            .busiest(Some(target), |u| u.read)
            .filter(|(_, _, units)| *units > 0.0)
            .map_or(String::new(), |(_, key, units)| {
                format!("; {key} {units:.0}")
            });
        let _ = writeln!(
            out,
            "{:<6} {:>10.0} {:>10.0} {:>10.0} {:>10.0}   {busiest_write}{busiest_read}",
            target.name(),
            load.requests.get(&target).copied().unwrap_or_default(),
            write,
            read,
            cost
        );
    }
    let table_write: f64 = [Target::Table, Target::Gsi1, Target::Gsi2]
        .into_iter()
        .map(|t| load.total(t, |u| u.write))
        .sum();
    let table_read: f64 = [Target::Table, Target::Gsi1, Target::Gsi2]
        .into_iter()
        .map(|t| load.total(t, |u| u.read))
        .sum();
    let logins = profile.logins_per_second.max(f64::MIN_POSITIVE);
    let _ = writeln!(
        out,
        "\nDynamoDB: {:.0} requests/s; {:.0} write and {:.0} read units/s; ${bill:.0} a month \
         (${:.2} per million logins, refreshes and admin pages included)",
        load.requests.values().sum::<f64>(),
        table_write,
        table_read,
        bill / (logins * SECONDS_PER_MONTH) * 1e6
    );
    let (write_target, write_key, write_units) =
        load.busiest(None, |u| u.write)
            .unwrap_or((Target::Table, "", 0.0));
    let ttl_deletes = load
        .keys
        .get(&(write_target, write_key.to_owned()))
        .map_or(0.0, |u| u.free_write);
    let (read_target, read_key, read_units) =
        load.busiest(None, |u| u.read)
            .unwrap_or((Target::Table, "", 0.0));
    let _ = writeln!(out, "\nWhere the next limits are:");
    let _ = writeln!(
        out,
        "- the busiest key ({} {write_key}) reaches 1,000 write units/s at {:.1}x this load; \
         ({} {read_key}) reaches 3,000 read units/s at {:.1}x",
        write_target.name(),
        WRITE_LIMIT / write_units.max(f64::MIN_POSITIVE),
        read_target.name(),
        READ_LIMIT / read_units.max(f64::MIN_POSITIVE),
    );
    if ttl_deletes > 0.0 {
        let _ = writeln!(
            out,
            "- TTL removes that key's index entries again later, {ttl_deletes:.0} deletes/s at \
             steady state: free, and done in the background with throughput requests leave \
             unused (DynamoDB slows TTL down rather than throttle requests)"
        );
    }
    let _ = writeln!(
        out,
        "- the table's on-demand throughput quota (default {TABLE_QUOTA:.0} units/s each way, \
         adjustable): {:.1}x of it for writes, {:.1}x for reads{}",
        table_write / TABLE_QUOTA,
        table_read / TABLE_QUOTA,
        if table_write > TABLE_QUOTA || table_read > TABLE_QUOTA {
            ": raise it, and pre-warm the table (warm throughput) before a launch"
        } else {
            ""
        }
    );
    let format = profile.user_code_format;
    let _ = writeln!(
        out,
        "- user codes ({} {}, {:.1e} of them): at most {:.0} live at once (each for its whole \
         10 minutes), so a draw meets a live one with probability {:.1e} and is drawn again \
         ({:.1} extra transactions/s); five draws in a row all meet one with probability {:.1e}",
        format.length(),
        format.charset().as_str(),
        format.space(),
        load.live_codes,
        load.collision,
        profile.logins_per_second * load.collision / (1.0 - load.collision),
        load.collision.powi(5),
    );
    let concurrency = load.http_requests * profile.request_ms / 1000.0;
    let _ = writeln!(
        out,
        "- API Gateway: {:.0} requests/s against a default account throttle of \
         {API_GATEWAY_QUOTA:.0}/s; Lambda: about {concurrency:.0} instances busy at \
         {} ms a request, against a default {LAMBDA_QUOTA:.0} per account",
        load.http_requests, profile.request_ms
    );
    let _ = writeln!(
        out,
        "busiest partition key: {write_units:.0} write units/s (limit {WRITE_LIMIT:.0})"
    );
    let _ = write!(
        out,
        "busiest partition key: {read_units:.0} read units/s (limit {READ_LIMIT:.0})"
    );
    out
}
