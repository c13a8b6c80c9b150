//! The body of `check-config`: load, validate, resolve, and render every problem with its
//! location. Returns text and an exit code; it must not print or exit itself.

use std::fmt::Write as _;
use std::path::Path;

use super::load::load;
use super::resolve::{SecretMode, resolve_all};
use super::validate::{Problem, Severity};

/// sysexits `EX_CONFIG`: the configuration is unusable.
pub const EX_CONFIG: i32 = 78;

/// Checks the config at `path`. With `syntax_only`, secrets (files, `${ENV}`) are not read.
/// Returns the exit code (0, or [`EX_CONFIG`] when there is any error) and the report: one line
/// per problem, then a summary line.
pub fn check_config(path: &Path, syntax_only: bool) -> (i32, String) {
    check_config_with_env(path, syntax_only, &|name| std::env::var(name).ok())
}

/// [`check_config`] with an injectable environment.
pub fn check_config_with_env(
    path: &Path,
    syntax_only: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> (i32, String) {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(e) => {
            return (
                EX_CONFIG,
                format!("{e}\n{}: invalid (1 error)\n", path.display()),
            );
        }
    };
    let mode = if syntax_only {
        SecretMode::Skip
    } else {
        SecretMode::Resolve
    };
    let (_, mut problems) = resolve_all(&loaded, mode, env);
    problems.sort_by_key(|p| (p.line.unwrap_or(0), p.severity));
    render(path, &problems, syntax_only)
}

fn render(path: &Path, problems: &[Problem], syntax_only: bool) -> (i32, String) {
    let mut out = String::new();
    for p in problems {
        let _ = writeln!(out, "{p}");
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let what = if syntax_only {
        " (secrets not read: --syntax-only)"
    } else {
        ""
    };
    if errors > 0 {
        let _ = writeln!(
            out,
            "{}: invalid ({}, {})",
            path.display(),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        (EX_CONFIG, out)
    } else {
        let _ = writeln!(
            out,
            "{}: OK ({}){what}",
            path.display(),
            plural(warnings, "warning")
        );
        (0, out)
    }
}
