//! The secret values a user-data document carries, so a run that also
//! builds layers can refuse them there: the registration token
//! (`stylus.site.edgeHostToken`), every string under a key naming a secret
//! (`mask::is_secret_field`: `registryCredentials.password`, a user's
//! `passwd`, any `*token`, `*password`, `*secret`), and the password of any
//! URL with userinfo
//! (`stylus.site.network.httpProxy`).

use serde_json::Value;

/// One secret value and the field path it is at.
pub struct SecretField {
    pub path: String,
    pub value: String,
    /// The password of a URL (`http://user:PASSWORD@host`) at `path`.
    pub in_url: bool,
}

pub fn of(doc: &Value) -> Vec<SecretField> {
    let mut out = Vec::new();
    walk(doc, "", &mut out);
    out
}

fn walk(v: &Value, path: &str, out: &mut Vec<SecretField>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let (Value::String(s), true) = (val, crate::mask::is_secret_field(k, val)) {
                    if !s.trim().is_empty() {
                        out.push(SecretField {
                            path: p.clone(),
                            value: s.trim().to_string(),
                            in_url: false,
                        });
                    }
                }
                walk(val, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            if let Some(pw) = crate::mask::url_password(s).filter(|pw| !pw.is_empty()) {
                out.push(SecretField {
                    path: path.to_string(),
                    value: pw.to_string(),
                    in_url: true,
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_token_passwords_and_url_passwords() {
        let doc = serde_json::json!({
            "stylus": {
                "site": {
                    "edgeHostToken": "tok-123456789",
                    "name": "edge-1",
                    "network": {"httpProxy": "http://bob:pr0xy-pass@proxy:3128", "noProxy": "10.0.0.0/8"}
                },
                "registryCredentials": {"username": "u", "password": "reg-pass-1", "insecure": false}
            },
            "stages": {"initramfs": [{"users": {"kairos": {"passwd": "kairos"}}}]}
        });
        let found: Vec<(String, String, bool)> = super::of(&doc)
            .into_iter()
            .map(|f| (f.path, f.value, f.in_url))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "stylus.site.edgeHostToken".into(),
                    "tok-123456789".into(),
                    false
                ),
                (
                    "stylus.site.network.httpProxy".into(),
                    "pr0xy-pass".into(),
                    true
                ),
                (
                    "stylus.registryCredentials.password".into(),
                    "reg-pass-1".into(),
                    false
                ),
                (
                    "stages.initramfs[0].users.kairos.passwd".into(),
                    "kairos".into(),
                    false
                ),
            ]
        );
    }
}
