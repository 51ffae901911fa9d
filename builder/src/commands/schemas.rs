// Every subcommand, as typed after `edgeforge`, with the schema of the one
// JSON object it prints under `--output json` (docs/json-output.md), and
// the subcommands whose output is a format of its own.
//
// This file holds data only: the binary includes it as a module, and
// tests/cli_output.rs `include!`s it, so the unit test that walks clap's
// command tree (every subcommand is listed here) and the integration test
// that runs every entry here with `--output json` check one list, without
// parsing help text.

/// `(subcommand, schema)`.
pub const JSON_SCHEMAS: &[(&str, &str)] = &[
    ("provider-image", "edgeforge.provider-image/v1"),
    ("iso", "edgeforge.iso/v1"),
    ("iso show", "edgeforge.iso-show/v1"),
    ("iso embed", "edgeforge.iso-embed/v1"),
    ("plan", "edgeforge.plan/v1"),
    ("doctor", "edgeforge.doctor/v1"),
    ("bundle", "edgeforge.bundle/v1"),
    ("bundle verify", "edgeforge.bundle-verify/v1"),
    ("bundle load", "edgeforge.bundle-load/v1"),
    ("push", "edgeforge.push/v1"),
    ("keys generate", "edgeforge.keys-generate/v1"),
    ("disk", "edgeforge.disk/v1"),
    ("disk embed", "edgeforge.disk-embed/v1"),
    ("cache prune", "edgeforge.cache-prune/v1"),
    ("verify", "edgeforge.verify/v1"),
    ("sign", "edgeforge.sign/v1"),
    ("build", "edgeforge.build/v1"),
    ("user-data validate", "edgeforge.user-data-validate/v1"),
    ("user-data render", "edgeforge.user-data-render/v1"),
    ("site-media", "edgeforge.site-media/v1"),
    ("render", "edgeforge.render/v1"),
    ("layer", "edgeforge.layer/v1"),
    ("unpack", "edgeforge.unpack/v1"),
];

/// Subcommands that print roff or shell code: `--output json` is a usage
/// error (exit 2) on them.
pub const TEXT_ONLY: &[&str] = &["completions", "man"];
