//! Resource indicators (RFC 8707): the APIs an access token is for. An administrator
//! allows a client some resources; a request names some of them (`resource`, repeatable);
//! the access token's `aud` is them, or the deployment's default audience when none is
//! named. A refresh may name fewer, never others.

/// The most resources a client may be allowed, or a request may name.
pub const MAX_RESOURCES: usize = 10;
/// The longest resource URI.
pub const MAX_RESOURCE_LEN: usize = 256;

/// The request names a resource that is malformed, or that the client may not use
/// (RFC 8707 §2: `invalid_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a requested resource is not an absolute URI without a fragment, or not allowed to this client"
)]
pub struct InvalidTarget;

/// Whether `value` is an absolute URI (RFC 3986 §4.3: a scheme, `:`, and more) without a
/// fragment (RFC 8707 §2), of printable ASCII, at most [`MAX_RESOURCE_LEN`] long.
pub fn is_resource(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    value.len() <= MAX_RESOURCE_LEN
        && scheme_ok
        && !rest.is_empty()
        && !value.contains('#')
        && value.chars().all(|c| c.is_ascii_graphic())
}

/// `values` as a set of resources: each one valid, at most [`MAX_RESOURCES`] of them;
/// sorted, duplicates removed.
pub fn parse_resources(values: &[String]) -> Result<Vec<String>, InvalidTarget> {
    if values.len() > MAX_RESOURCES || !values.iter().all(|v| is_resource(v)) {
        return Err(InvalidTarget);
    }
    let mut resources = values.to_vec();
    resources.sort();
    resources.dedup();
    Ok(resources)
}

/// The resources a device authorization request gets: the ones it names, each of which
/// the client must be allowed; none named, none (the default audience).
pub fn choose(requested: &[String], allowed: &[String]) -> Result<Vec<String>, InvalidTarget> {
    let requested = parse_resources(requested)?;
    if requested.iter().all(|r| allowed.contains(r)) {
        Ok(requested)
    } else {
        Err(InvalidTarget)
    }
}

/// The resources a refreshed access token is for: the ones the refresh names (none named:
/// all of the grant's), each of which the grant must hold and the client must still be
/// allowed. A grant for the default audience stays there; one whose resources the client
/// has all lost gets nothing (never the default audience instead).
pub fn narrow(
    requested: &[String],
    granted: &[String],
    allowed: &[String],
) -> Result<Vec<String>, InvalidTarget> {
    let requested = parse_resources(requested)?;
    if requested.iter().any(|r| !granted.contains(r)) {
        return Err(InvalidTarget);
    }
    let wanted = if requested.is_empty() {
        granted.to_vec()
    } else {
        requested
    };
    let kept: Vec<String> = wanted.into_iter().filter(|r| allowed.contains(r)).collect();
    if kept.is_empty() && !granted.is_empty() {
        return Err(InvalidTarget);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn a_resource_is_an_absolute_uri_without_a_fragment() {
        for good in [
            "https://api.example.com",
            "https://api.example.com/v1",
            "urn:example:photos",
        ] {
            assert!(is_resource(good), "{good}");
        }
        for bad in [
            "",
            "api.example.com",
            "/relative",
            "https://api.example.com/#top",
            "https://api.example.com/a b",
            "1http://x",
            "https:",
            &format!("https://{}", "a".repeat(MAX_RESOURCE_LEN)),
        ] {
            assert!(!is_resource(bad), "{bad}");
        }
    }

    #[test]
    fn a_request_gets_what_it_names_within_what_is_allowed() {
        let allowed = list(&["https://a.example", "https://b.example"]);
        assert_eq!(choose(&[], &allowed), Ok(vec![]));
        assert_eq!(
            choose(
                &list(&[
                    "https://b.example",
                    "https://a.example",
                    "https://b.example"
                ]),
                &allowed
            ),
            Ok(list(&["https://a.example", "https://b.example"]))
        );
        assert_eq!(
            choose(&list(&["https://c.example"]), &allowed),
            Err(InvalidTarget)
        );
        assert_eq!(choose(&list(&["not a uri"]), &allowed), Err(InvalidTarget));
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("https://{i}.example"))
            .collect();
        assert_eq!(choose(&many, &many), Err(InvalidTarget));
    }

    #[test]
    fn a_refresh_narrows_never_widens() {
        let granted = list(&["https://a.example", "https://b.example"]);
        let allowed = granted.clone();
        assert_eq!(narrow(&[], &granted, &allowed), Ok(granted.clone()));
        assert_eq!(
            narrow(&list(&["https://a.example"]), &granted, &allowed),
            Ok(list(&["https://a.example"]))
        );
        assert_eq!(
            narrow(&list(&["https://c.example"]), &granted, &allowed),
            Err(InvalidTarget)
        );
        // A grant for the default audience cannot be widened to a resource.
        assert_eq!(
            narrow(&list(&["https://a.example"]), &[], &allowed),
            Err(InvalidTarget)
        );
        assert_eq!(narrow(&[], &[], &allowed), Ok(vec![]));
        // The client lost one: it is dropped; lost all: nothing, never the default audience.
        assert_eq!(
            narrow(&[], &granted, &list(&["https://b.example"])),
            Ok(list(&["https://b.example"]))
        );
        assert_eq!(narrow(&[], &granted, &[]), Err(InvalidTarget));
    }
}
