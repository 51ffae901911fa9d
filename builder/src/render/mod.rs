//! Rendering: overlay trees are copied with `.tera` files rendered against the
//! resolved definition; shared templates can be `{% include %}`d.

mod context;
mod errors;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub use context::context_for;

use crate::error::{fail, Category};
use crate::source_files;

/// The repository's templates, compiled in so the binary works on its own;
/// a definition's `templates:` folder overrides them by name.
const BUILTIN: [(&str, &str); 6] = [
    (
        "user-data.tera",
        include_str!("../../../templates/user-data.tera"),
    ),
    (
        "grub.cfg.tera",
        include_str!("../../../templates/grub.cfg.tera"),
    ),
    (
        "grub-stub.cfg.tera",
        include_str!("../../../templates/grub-stub.cfg.tera"),
    ),
    (
        "grub-early.cfg.tera",
        include_str!("../../../templates/grub-early.cfg.tera"),
    ),
    (
        "kairos-release.tera",
        include_str!("../../../templates/kairos-release.tera"),
    ),
    (
        "os-release.tera",
        include_str!("../../../templates/os-release.tera"),
    ),
];

pub struct Renderer {
    tera: tera::Tera,
    context: tera::Context,
    /// Template name -> (file it came from, its text), for error locations.
    sources: HashMap<String, (PathBuf, String)>,
}

impl Renderer {
    /// Loads the built-in templates, then every file of `templates` (named by
    /// relative path, overriding a built-in of the same name) so overlays can
    /// include them; templates are parsed up front so syntax errors come first.
    pub fn new(templates: Option<&Path>, context: tera::Context) -> anyhow::Result<Self> {
        let mut r = Renderer {
            tera: tera::Tera::default(),
            context,
            sources: HashMap::new(),
        };
        r.tera.autoescape_on(vec![]);
        // Tera registers `get_env` whatever its features: a template could
        // read the whole environment, a `--token-env` variable included, and
        // bake it into an image. Templates see only their context.
        r.tera.register_function("get_env", no_environment);
        for (name, text) in BUILTIN {
            r.add(
                name,
                PathBuf::from(format!("(built-in) templates/{name}")),
                text.to_string(),
            )?;
        }
        if let Some(dir) = templates {
            for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
                if entry.file_type().is_file() {
                    let name = entry
                        .path()
                        .strip_prefix(dir)
                        .expect("under dir")
                        .to_string_lossy()
                        .into_owned();
                    let text = read_text(entry.path())?;
                    r.add(&name, entry.path().to_path_buf(), text)?;
                }
            }
        }
        Ok(r)
    }

    fn add(&mut self, name: &str, path: PathBuf, text: String) -> anyhow::Result<()> {
        self.tera
            .add_raw_template(name, &text)
            .map_err(|e| errors::template_error(&path, &text, &e))?;
        self.sources.insert(name.to_string(), (path, text));
        Ok(())
    }

    /// Adds a variable to the context (`site`, `token` for user-data).
    pub fn insert(&mut self, key: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        self.context.insert(key, &tera::to_value(value)?);
        Ok(())
    }

    /// Renders a loaded template by name (`grub.cfg.tera`).
    pub fn render_named(&self, name: &str) -> anyhow::Result<String> {
        self.tera.render(name, &self.context).map_err(|e| {
            let (path, text) = &self.sources[name];
            errors::template_error(path, text, &e)
        })
    }

    /// Renders one template file (an overlay's `.tera`).
    pub fn render_file(&mut self, path: &Path) -> anyhow::Result<String> {
        let name = format!("file:{}", path.display());
        self.add(&name, path.to_path_buf(), read_text(path)?)?;
        let out = self.render_named(&name);
        // Overlay files are not includable; drop them so names never clash.
        self.tera.templates.remove(&name);
        self.sources.remove(&name);
        out
    }

    /// Copies `trees` in order into `dest` (later trees win), rendering files
    /// ending `.tera` (written without the suffix, keeping the mode) and
    /// keeping modes and symlinks of everything else. Returns which source
    /// file each written path (relative to `dest`) came from.
    pub fn render_trees(
        &mut self,
        trees: &[impl AsRef<Path>],
        dest: &Path,
    ) -> anyhow::Result<Origins> {
        fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut origins = Origins::new();
        for tree in trees {
            let tree = tree.as_ref();
            for entry in walkdir::WalkDir::new(tree).min_depth(1).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", tree.display()))?;
                let src = entry.path();
                let rel = src.strip_prefix(tree).expect("under tree");
                let ft = entry.file_type();
                source_files::check(src, ft)?;
                let md = entry
                    .metadata()
                    .with_context(|| format!("reading {}", src.display()))?;
                if ft.is_dir() {
                    let out = dest.join(rel);
                    if fs::symlink_metadata(&out).is_ok_and(|m| !m.is_dir()) {
                        remove(&out)?;
                    }
                    fs::create_dir_all(&out)
                        .with_context(|| format!("creating {}", out.display()))?;
                    fs::set_permissions(&out, fs::Permissions::from_mode(0o755))?;
                } else if ft.is_symlink() {
                    let out = dest.join(rel);
                    remove(&out)?;
                    let target = fs::read_link(src)
                        .with_context(|| format!("reading link {}", src.display()))?;
                    symlink(&target, &out)
                        .with_context(|| format!("creating link {}", out.display()))?;
                } else if let Some(stem) = rel.to_str().and_then(|r| r.strip_suffix(".tera")) {
                    origins.insert(stem.into(), src.to_path_buf());
                    let out = dest.join(stem);
                    let text = self.render_file(src)?;
                    remove(&out)?;
                    fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
                    fs::set_permissions(&out, normal_mode(&md))?;
                } else {
                    origins.insert(rel.to_path_buf(), src.to_path_buf());
                    let out = dest.join(rel);
                    remove(&out)?;
                    fs::copy(src, &out).with_context(|| {
                        format!("copying {} to {}", src.display(), out.display())
                    })?;
                    fs::set_permissions(&out, normal_mode(&md))?;
                }
            }
        }
        Ok(origins)
    }
}

/// Stands in for Tera's `get_env`, so a template calling it fails naming
/// itself instead of reading the environment.
fn no_environment(_: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    Err(tera::Error::msg(
        "get_env is disabled: templates see no environment variables (a registration token could be among them), only the definition's variables (see `edgeforge render` context.json); pass values through the definition or --set",
    ))
}

/// What a checkout gives a file's mode is the umask's doing: rendered trees
/// have 0755 for executables and 0644 for the rest.
fn normal_mode(md: &fs::Metadata) -> fs::Permissions {
    let exec = md.permissions().mode() & 0o111 != 0;
    fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 })
}

/// Rendered path (relative) -> the overlay file it came from.
pub type Origins = HashMap<PathBuf, PathBuf>;

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| {
        fail(
            Category::Template,
            format!("{}: a template must be UTF-8 text", path.display()),
        )
    })
}

fn remove(p: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    }
    .with_context(|| format!("replacing {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_cannot_read_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("leak.tera");
        fs::write(&file, "a\nb={{ get_env(name=\"PATH\", default=\"\") }}\n").unwrap();
        let mut r = Renderer::new(None, tera::Context::new()).unwrap();
        let e = r.render_file(&file).unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            e.downcast_ref::<crate::error::Failure>()
                .map(|f| f.category),
            Some(Category::Template),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("{}:2: ", file.display())), "{msg}");
        assert!(msg.contains("get_env is disabled"), "{msg}");
    }
}
