//! Masking secrets in text shown to people: a line assigning a registration
//! token or a password shows its value as `****`.

/// Keys whose values are secrets (compared case-insensitively, by suffix so
/// `edgeHostToken`, `password`, `passwd` and `registrationToken` all match).
const SECRET_KEYS: [&str; 4] = ["token", "password", "passwd", "secret"];

/// Masks the value of a `key: value` (YAML) or `"key": value` line whose key
/// names a secret.
pub fn line(line: &str) -> String {
    let Some((key, value)) = line.split_once(':') else {
        return line.to_string();
    };
    let k = key
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\''])
        .to_ascii_lowercase();
    if value.trim().is_empty() || !SECRET_KEYS.iter().any(|s| k.ends_with(s)) {
        return line.to_string();
    }
    format!("{key}: ****")
}

/// Masks the password of a URL's userinfo (`http://user:****@proxy:3128`).
pub fn url(u: &str) -> String {
    match (u.split_once("://"), url_password(u)) {
        (Some((scheme, rest)), Some(_)) => {
            let (userinfo, host) = rest.split_once('@').expect("a password has userinfo");
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:****@{host}")
        }
        _ => u.to_string(),
    }
}

/// The password in a URL's userinfo (`http://user:PASSWORD@proxy:3128`).
pub fn url_password(u: &str) -> Option<&str> {
    let (_, rest) = u.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

/// Masks proxy passwords in a JSON document with a `proxy` object (the
/// resolved definition, the template context).
pub fn proxy_urls(doc: &mut serde_json::Value) {
    for key in ["http_proxy", "https_proxy"] {
        if let Some(serde_json::Value::String(u)) = doc["proxy"].get(key) {
            doc["proxy"][key] = serde_json::Value::String(url(u));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_secret_values_only() {
        assert_eq!(
            super::line("    edgeHostToken: abc123"),
            "    edgeHostToken: ****"
        );
        assert_eq!(
            super::line("  \"password\": \"x\","),
            "  \"password\": ****"
        );
        assert_eq!(super::line("  - passwd: hunter2"), "  - passwd: ****");
        assert_eq!(super::line("  name: edge-1"), "  name: edge-1");
        assert_eq!(super::line("  tokens:"), "  tokens:");
    }

    #[test]
    fn masks_url_passwords() {
        assert_eq!(
            super::url("http://bob:hunter2@proxy:3128"),
            "http://bob:****@proxy:3128"
        );
        assert_eq!(super::url("http://proxy:3128"), "http://proxy:3128");
    }
}
