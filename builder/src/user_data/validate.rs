//! What the Palette edge installer reads from user-data, checked before an
//! ISO is built: types, formats and known names, each finding with its field
//! path (`stylus.site.network.interfaces[0].ipAddress`) and line. Messages
//! never quote the value of a secret field.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug)]
pub struct Finding {
    pub severity: Severity,
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "{l}: {kind}: {}: {}", self.path, self.message),
            None => write!(f, "{kind}: {}: {}", self.path, self.message),
        }
    }
}

const STAGES: &[&str] = &[
    "before-install",
    "after-install",
    "after-install-chroot",
    "before-reset",
    "after-reset",
    "after-reset-chroot",
    "before-upgrade",
    "after-upgrade",
    "after-upgrade-chroot",
    "kairos-install.pre",
    "kairos-install.after",
];
const BOOT_STAGES: &[&str] = &["rootfs", "initramfs", "boot", "fs", "network", "reconcile"];
const SITE_KEYS: &[&str] = &[
    "paletteEndpoint",
    "edgeHostToken",
    "projectName",
    "projectUid",
    "name",
    "tags",
    "registrationURL",
    "debug",
    "insecureSkipVerify",
    "network",
    "caCerts",
];
const STYLUS_KEYS: &[&str] = &[
    "site",
    "registryCredentials",
    "managementMode",
    "debug",
    "trace",
    "includeTui",
    "localUI",
];

/// What a document is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The installer's user-data: the whole configuration.
    Full,
    /// A site override (a site user-data medium read at first boot, applied
    /// on top of the installer's): any subset of keys, so nothing is
    /// required (no token, no complete static interface); types, formats and
    /// known names are checked as in [`Mode::Full`].
    Override,
}

struct Checker<'a> {
    text: &'a str,
    mode: Mode,
    findings: Vec<Finding>,
}

/// A field path; keys and list indices.
#[derive(Clone, Default)]
struct FieldPath(Vec<Seg>);

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl FieldPath {
    fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|s| {
                if let Seg::Key(k) = s {
                    Some(k.as_str())
                } else {
                    None
                }
            })
            .collect()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks a parsed document as `mode` says (`text` is its source, for line
/// numbers).
pub fn check_as(doc: &Value, text: &str, mode: Mode) -> Vec<Finding> {
    let mut c = Checker {
        text,
        mode,
        findings: Vec::new(),
    };
    let root = FieldPath::default();
    if doc.is_null() {
        return c.findings; // a bare `#cloud-config` asks for nothing
    }
    let Some(top) = c.map(doc, &root) else {
        return c.findings;
    };
    if let Some(stylus) = top.get("stylus") {
        c.stylus(stylus, &root.key("stylus"));
    }
    if let Some(install) = top.get("install") {
        c.install(install, &root.key("install"));
    }
    if let Some(stages) = top.get("stages") {
        c.stages(stages, &root.key("stages"));
    }
    if let Some(users) = top.get("users") {
        c.user_list(users, &root.key("users"));
    }
    if let Some(mode) = top.get("installationMode") {
        c.one_of(
            mode,
            &root.key("installationMode"),
            &["airgap", "connected"],
        );
    }
    // Messages quote values (`bob:PW@proxy:3128` must be a URL...): mask
    // every secret of the document in them.
    let secrets = crate::mask::Secrets::of(doc);
    for f in &mut c.findings {
        f.message = secrets.text(&f.message);
    }
    c.findings
}

impl Checker<'_> {
    fn report(&mut self, severity: Severity, path: &FieldPath, message: String) {
        let keys = path.keys();
        let line = if keys.is_empty() {
            Some(1)
        } else {
            yaml::line_of(self.text, &keys)
        };
        self.findings.push(Finding {
            severity,
            path: if keys.is_empty() {
                "(document)".into()
            } else {
                path.to_string()
            },
            line,
            message,
        });
    }

    fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.report(Severity::Error, path, message.into());
    }

    fn warn(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.report(Severity::Warning, path, message.into());
    }

    fn map<'v>(&mut self, v: &'v Value, path: &FieldPath) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.error(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn list<'v>(&mut self, v: &'v Value, path: &FieldPath) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.error(path, format!("expected a list, found {}", type_name(other)));
                None
            }
        }
    }

    fn string<'v>(&mut self, v: &'v Value, path: &FieldPath) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A field the installer reads as text: its YAML reader takes any
    /// scalar's text for a string (`projectUid: 12345` is "12345"). A
    /// boolean is most likely a mistake (`name: yes`), so it is a warning.
    fn text(&mut self, v: &Value, path: &FieldPath) {
        match v {
            Value::String(_) | Value::Number(_) => {}
            Value::Bool(b) => self.warn(
                path,
                format!("the boolean {b} is read as the text \"{b}\"; quote it if that is meant"),
            ),
            other => self.error(
                path,
                format!("expected a string, found {}", type_name(other)),
            ),
        }
    }

    fn boolean(&mut self, v: &Value, path: &FieldPath) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    path,
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn strings(&mut self, v: &Value, path: &FieldPath) {
        if let Some(items) = self.list(v, path) {
            for (i, item) in items.iter().enumerate() {
                self.string(item, &path.index(i));
            }
        }
    }

    fn one_of(&mut self, v: &Value, path: &FieldPath, allowed: &[&str]) {
        if let Some(s) = self.string(v, path) {
            if !allowed.contains(&s) {
                let s = s.to_string();
                self.error(path, format!("`{s}` is not one of {}", allowed.join(", ")));
            }
        }
    }

    fn ip(&mut self, v: &Value, path: &FieldPath) {
        if let Some(s) = self.string(v, path) {
            if s.parse::<IpAddr>().is_err() {
                let s = s.to_string();
                self.error(path, format!("`{s}` is not an IP address"));
            }
        }
    }

    /// An interface address, with or without its prefix length
    /// (`10.0.10.25/24`, which the installer takes in place of `mask`).
    fn address(&mut self, v: &Value, path: &FieldPath) {
        let Some(s) = self.string(v, path) else {
            return;
        };
        let ok = match s.split_once('/') {
            None => s.parse::<IpAddr>().is_ok(),
            Some((ip, prefix)) => match (ip.parse::<IpAddr>(), prefix.parse::<u8>()) {
                (Ok(IpAddr::V4(_)), Ok(n)) => n <= 32,
                (Ok(IpAddr::V6(_)), Ok(n)) => n <= 128,
                _ => false,
            },
        };
        if !ok {
            let s = s.to_string();
            self.error(
                path,
                format!("`{s}` is not an IP address (with an optional /prefix length)"),
            );
        }
    }

    fn stylus(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "site" => self.site(val, &p),
                "registryCredentials" => self.registry_credentials(val, &p),
                "managementMode" => self.one_of(val, &p, &["central", "local"]),
                "debug" | "trace" | "includeTui" => {
                    self.boolean(val, &p);
                }
                _ if STYLUS_KEYS.contains(&k.as_str()) => {}
                _ => self.warn(
                    &p,
                    "not a field the Palette agent reads (check the spelling)",
                ),
            }
        }
    }

    fn site(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "paletteEndpoint" => {
                    if let Some(s) = self.string(val, &p) {
                        let host = s
                            .rsplit_once(':')
                            .filter(|(_, port)| port.parse::<u16>().is_ok())
                            .map_or(s, |(h, _)| h);
                        if s.contains("://")
                            || host.is_empty()
                            || !host
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                        {
                            let s = s.to_string();
                            self.error(&p, format!("`{s}` must be a host name without scheme or path, like api.spectrocloud.com"));
                        }
                    }
                }
                "edgeHostToken" => {
                    if self.string(val, &p).is_some_and(|s| s.trim().is_empty()) {
                        self.error(&p, "is empty; give the registration token, or leave the field out for manual registration");
                    }
                }
                "projectName" | "projectUid" | "name" | "registrationURL" => {
                    self.text(val, &p);
                }
                "debug" | "insecureSkipVerify" => {
                    self.boolean(val, &p);
                }
                "tags" => {
                    if let Some(tags) = self.map(val, &p) {
                        for (tk, tv) in tags {
                            if !matches!(tv, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                                self.error(
                                    &p.key(tk),
                                    format!(
                                        "a tag value must be a scalar, found {}",
                                        type_name(tv)
                                    ),
                                );
                            }
                        }
                    }
                }
                "network" => self.network(val, &p),
                "caCerts" => {
                    if let Some(certs) = self.list(val, &p) {
                        for (i, c) in certs.iter().enumerate() {
                            if self
                                .string(c, &p.index(i))
                                .is_some_and(|s| !s.contains("BEGIN CERTIFICATE"))
                            {
                                self.error(
                                    &p.index(i),
                                    "is not a PEM certificate (no BEGIN CERTIFICATE line)",
                                );
                            }
                        }
                    }
                }
                _ => self.warn(
                    &p,
                    format!("not a stylus.site field (known: {})", SITE_KEYS.join(", ")),
                ),
            }
        }
        if m.contains_key("projectName") && m.contains_key("projectUid") {
            self.error(
                &path.key("projectUid"),
                "set projectName or projectUid, not both",
            );
        }
        // An override may change the endpoint and keep the installer's token.
        if self.mode == Mode::Full
            && m.contains_key("paletteEndpoint")
            && !m.contains_key("edgeHostToken")
        {
            self.warn(
                &path.key("paletteEndpoint"),
                "no edgeHostToken, so the device will wait for manual registration",
            );
        }
    }

    fn network(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "httpProxy" | "httpsProxy" => {
                    if let Some(s) = self.string(val, &p) {
                        if !(s.is_empty() || s.starts_with("http://") || s.starts_with("https://")) {
                            let s = s.to_string();
                            self.error(&p, format!("`{s}` must be a URL starting with http:// or https://"));
                        }
                    }
                }
                "noProxy" => self.text(val, &p),
                "nameserver" => self.ip(val, &p),
                "interfaces" => match val {
                    Value::Object(nics) => {
                        for (nic, cfg) in nics {
                            self.interface(cfg, &p.key(nic));
                        }
                    }
                    Value::Array(list) => {
                        for (i, cfg) in list.iter().enumerate() {
                            self.interface(cfg, &p.index(i));
                        }
                    }
                    other => self.error(&p, format!("expected a mapping of interface names, found {}", type_name(other))),
                },
                _ => self.warn(&p, "not a stylus.site.network field (httpProxy, httpsProxy, noProxy, nameserver, interfaces)"),
            }
        }
    }

    fn interface(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        let kind = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("dhcp")
            .to_string();
        if let Some(t) = m.get("type") {
            self.one_of(t, &path.key("type"), &["static", "dhcp"]);
        }
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "type" => {}
                "ipAddress" => self.address(val, &p),
                "gateway" | "nameserver" => self.ip(val, &p),
                "mask" => {
                    let ok = match val {
                        Value::Number(n) => n.as_u64().is_some_and(|n| n <= 32),
                        Value::String(s) => {
                            s.parse::<std::net::Ipv4Addr>().is_ok()
                                || s.parse::<u8>().is_ok_and(|n| n <= 32)
                        }
                        _ => false,
                    };
                    if !ok {
                        self.error(
                            &p,
                            "must be a netmask like 255.255.255.0 or a prefix length 0-32",
                        );
                    } else {
                        self.mask_agrees(val, m.get("ipAddress"), &p);
                    }
                }
                _ => self.warn(
                    &p,
                    "not an interface field (type, ipAddress, mask, gateway, nameserver)",
                ),
            }
        }
        // An override may change one field of an interface the installer's
        // user-data sets up.
        // The prefix may come with the address instead of `mask`; a missing
        // mask or gateway is not known to stop the installer, so it warns.
        if kind == "static" && self.mode == Mode::Full {
            let address = m.get("ipAddress").and_then(Value::as_str);
            if address.is_none() && !m.contains_key("ipAddress") {
                self.error(
                    &path.key("ipAddress"),
                    "a static interface needs an ipAddress",
                );
            }
            if !m.contains_key("mask") && !address.is_some_and(|a| a.contains('/')) {
                self.warn(
                    &path.key("mask"),
                    "a static interface needs a mask, or its prefix in ipAddress (10.0.10.25/24)",
                );
            }
            if !m.contains_key("gateway") {
                self.warn(
                    &path.key("gateway"),
                    "a static interface without gateway reaches its own subnet only",
                );
            }
        }
    }

    /// A netmask whose ones do not stand together, or that says another
    /// prefix than the one in `ipAddress`, is a likely mistake; what the
    /// installer makes of it is not known, so it warns.
    fn mask_agrees(&mut self, mask: &Value, address: Option<&Value>, path: &FieldPath) {
        let prefix = match mask {
            Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Value::String(s) => match s.parse::<std::net::Ipv4Addr>() {
                Ok(dotted) => {
                    let bits = u32::from(dotted);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        self.warn(
                            path,
                            format!("`{s}` is no netmask: its one bits do not stand together (255.255.255.0 is /24)"),
                        );
                        return;
                    }
                    Some(bits.leading_ones() as u8)
                }
                Err(_) => s.parse::<u8>().ok(),
            },
            _ => None,
        };
        let in_address = address
            .and_then(Value::as_str)
            .and_then(|a| a.split_once('/'))
            .and_then(|(_, p)| p.parse::<u8>().ok());
        if let (Some(mask), Some(given)) = (prefix, in_address) {
            if mask != given {
                self.warn(
                    path,
                    format!("says /{mask}, and ipAddress says /{given}: give the prefix once"),
                );
            }
        }
    }

    fn registry_credentials(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "domain" | "username" | "password" => self.text(val, &p),
                "insecure" | "encodedPassword" => {
                    self.boolean(val, &p);
                }
                _ => self.warn(
                    &p,
                    "not a registryCredentials field (domain, username, password, insecure)",
                ),
            }
        }
    }

    fn install(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (k, val) in m {
            let p = path.key(k);
            match k.as_str() {
                "reboot" | "poweroff" | "auto" => {
                    self.boolean(val, &p);
                }
                "device" => {
                    if let Some(s) = self.string(val, &p) {
                        if !(s == "auto" || s.starts_with("/dev/") || s.starts_with("script://")) {
                            let s = s.to_string();
                            self.error(
                                &p,
                                format!("`{s}` must be `auto`, a /dev/... path or script://..."),
                            );
                        }
                    }
                }
                "grub_options" => {
                    if let Some(g) = self.map(val, &p) {
                        if let Some(x) = g.get("extra_cmdline") {
                            if self
                                .string(x, &p.key("extra_cmdline"))
                                .is_some_and(|s| s.contains('\n'))
                            {
                                self.error(&p.key("extra_cmdline"), "must be one line");
                            }
                        }
                    }
                }
                "bind_mounts" => self.strings(val, &p),
                _ => {}
            }
        }
        if m.get("reboot") == Some(&Value::Bool(true))
            && m.get("poweroff") == Some(&Value::Bool(true))
        {
            self.error(
                &path.key("poweroff"),
                "reboot and poweroff are both true; choose one",
            );
        }
    }

    fn stages(&mut self, v: &Value, path: &FieldPath) {
        let Some(m) = self.map(v, path) else { return };
        for (name, steps) in m {
            let p = path.key(name);
            let base = name.trim_end_matches(".before").trim_end_matches(".after");
            if !(STAGES.contains(&name.as_str()) || BOOT_STAGES.contains(&base)) {
                self.error(
                    &p,
                    format!(
                        "unknown stage `{name}` (known: {}, each with .before/.after, and {})",
                        BOOT_STAGES.join(", "),
                        STAGES.join(", ")
                    ),
                );
                continue;
            }
            let Some(steps) = self.list(steps, &p) else {
                continue;
            };
            for (i, step) in steps.iter().enumerate() {
                let sp = p.index(i);
                let Some(step) = self.map(step, &sp) else {
                    continue;
                };
                if let Some(c) = step.get("commands") {
                    self.strings(c, &sp.key("commands"));
                }
                if let Some(files) = step.get("files") {
                    if let Some(files) = self.list(files, &sp.key("files")) {
                        for (j, f) in files.iter().enumerate() {
                            if let Some(f) = self.map(f, &sp.key("files").index(j)) {
                                if !f.get("path").is_some_and(Value::is_string) {
                                    self.error(
                                        &sp.key("files").index(j).key("path"),
                                        "each file needs a path",
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(users) = step.get("users") {
                    if let Some(users) = self.map(users, &sp.key("users")) {
                        for (uname, u) in users {
                            self.user(uname, u, &sp.key("users").key(uname));
                        }
                    }
                }
            }
        }
    }

    fn user_list(&mut self, v: &Value, path: &FieldPath) {
        let Some(list) = self.list(v, path) else {
            return;
        };
        for (i, u) in list.iter().enumerate() {
            let p = path.index(i);
            let name = u
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            self.user(&name, u, &p);
        }
    }

    fn user(&mut self, name: &str, v: &Value, path: &FieldPath) {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            self.error(
                path,
                format!("user name `{name}` must match [a-z_][a-z0-9_-]* (at most 32 characters)"),
            );
        }
        let Some(m) = self.map(v, path) else { return };
        if let Some(p) = m.get("passwd") {
            self.text(p, &path.key("passwd"));
        }
        for k in ["groups", "ssh_authorized_keys"] {
            if let Some(list) = m.get(k) {
                self.strings(list, &path.key(k));
            }
        }
    }
}
