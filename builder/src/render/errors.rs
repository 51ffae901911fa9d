//! Turns Tera's errors into `file:line: message`. Tera reports parse errors
//! with a position but render errors (undefined variables) without one, so the
//! line of an undefined variable is found in the template text.

use std::error::Error as _;
use std::path::Path;

use crate::error::{fail, Category};

pub fn template_error(path: &Path, text: &str, e: &tera::Error) -> anyhow::Error {
    let mut messages = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        messages.push(s.to_string());
        source = s.source();
    }
    let innermost = messages.last().cloned().unwrap_or_default();
    if let Some(var) = between(&innermost, "Variable `", "` not found") {
        let line = line_using(text, var)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        return fail(
            Category::Template,
            format!(
                "{}{line}: undefined variable `{var}`; the variables are os, arch, kubernetes, agent, registry, repository, custom_tag, iso_name, fips, proxy, iso, menu, image, version, source_date_epoch, created, labels (see `edgeforge render` context.json)",
                path.display()
            ),
        );
    }
    // Parse errors carry " --> LINE:COL" in the message; a failed function
    // call (`get_env`) is found in the text like an undefined variable.
    let line = messages
        .iter()
        .find_map(|m| between(m, "--> ", ":").map(str::to_string))
        .or_else(|| {
            let function = messages
                .iter()
                .find_map(|m| between(m, "Function call '", "' failed"))?;
            line_using(text, function).map(|l| l.to_string())
        });
    let loc = line.map(|l| format!(":{l}")).unwrap_or_default();
    let detail = messages
        .iter()
        .skip(1)
        .map(|m| m.trim())
        .collect::<Vec<_>>()
        .join(": ");
    let detail = if detail.is_empty() {
        messages[0].clone()
    } else {
        detail
    };
    fail(
        Category::Template,
        format!("{}{loc}: {detail}", path.display()),
    )
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The first line whose `{{ }}` or `{% %}` block mentions `var`.
fn line_using(text: &str, var: &str) -> Option<usize> {
    text.lines()
        .position(|l| (l.contains("{{") || l.contains("{%")) && l.contains(var))
        .map(|i| i + 1)
}
