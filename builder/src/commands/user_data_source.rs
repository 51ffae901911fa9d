//! Turns the user-data arguments into a checked document: a ready file, or a
//! site rendered through the template with the token from its source.

use std::path::{Path, PathBuf};

use crate::cli::UserDataArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::log::info;
use crate::provider::renderer_for;
use crate::render::Renderer;
use crate::user_data::validate::Mode;
use crate::user_data::{self, Secret, Site, UserData};

/// The user-data the arguments name, or `None` when they name none.
/// `renderer` gives the template's context (the definition's variables).
pub fn resolve(
    a: &UserDataArgs,
    renderer: impl FnOnce() -> anyhow::Result<Renderer>,
) -> anyhow::Result<Option<UserData>> {
    user_data::refuse_command_line_token(a.token.as_deref())?;
    let ud = match &a.user_data {
        Some(file) => UserData::load(file)?,
        None if a.site.is_some() || !a.site_values.is_empty() => {
            let site = Site::load(a.site.as_deref(), &a.site_values)?;
            render_site(&site, a, &mut renderer()?)?
        }
        None => return Ok(None),
    };
    info!("user-data {} (sha256 {})", ud.path.display(), ud.sha256);
    Ok(Some(ud))
}

/// The user-data of an ISO built from `l`: required unless the ISO is golden.
pub fn for_iso(
    a: &UserDataArgs,
    l: &LoadedDefinition,
    epoch: u64,
    golden: bool,
) -> anyhow::Result<Option<UserData>> {
    let first = l.variants().remove(0);
    let ud = resolve(a, || renderer_for(l, &first, epoch))?;
    if ud.is_none() && !golden {
        return Err(missing());
    }
    Ok(ud)
}

/// The renderer for sites outside a build (`iso embed`, `site-media`): with
/// `--definition`, the definition's (its `templates:` folder and variables),
/// exactly as `user-data render IMAGE_YAML` renders; without, the project in
/// the current folder, whose `templates/user-data.tera` must exist: the copy
/// built into edgeforge may be older than the project's.
pub fn site_renderer(definition: Option<&Path>, epoch: u64) -> anyhow::Result<Renderer> {
    if let Some(path) = definition {
        let l = LoadedDefinition::load(path, &[])?;
        let first = l.variants().remove(0);
        return renderer_for(&l, &first, epoch);
    }
    let templates = Path::new("templates");
    if !templates.join("user-data.tera").is_file() {
        return Err(fail(
            Category::Usage,
            "rendering a site needs the project's templates/user-data.tera: run in the project folder (the one holding templates/), or give --definition IMAGE_YAML to use its templates: folder",
        ));
    }
    Renderer::new(Some(templates), tera::Context::new())
}

/// Like [`resolve`], for commands that need user-data.
pub fn require(
    a: &UserDataArgs,
    renderer: impl FnOnce() -> anyhow::Result<Renderer>,
) -> anyhow::Result<UserData> {
    resolve(a, renderer)?.ok_or_else(missing)
}

pub fn missing() -> anyhow::Error {
    fail(
        Category::Usage,
        "no user-data: give --user-data FILE, or --site FILE / --site-value name=... (with --token-env or --token-file) to render templates/user-data.tera; only a --golden ISO may have none",
    )
}

/// Renders and checks one site's user-data.
pub fn render_site(
    site: &Site,
    a: &UserDataArgs,
    renderer: &mut Renderer,
) -> anyhow::Result<UserData> {
    render_site_as(site, a, renderer, Mode::Full)
}

/// Like [`render_site`], checking the document as `mode` says.
pub fn render_site_as(
    site: &Site,
    a: &UserDataArgs,
    renderer: &mut Renderer,
    mode: Mode,
) -> anyhow::Result<UserData> {
    // `--sites` runs come here without `resolve`.
    user_data::refuse_command_line_token(a.token.as_deref())?;
    let token = token_for(a, site)?;
    let text = user_data::render(renderer, site, token.as_ref())?;
    UserData::from_bytes_as(
        &PathBuf::from(format!("templates/user-data.tera (site {})", site.name)),
        text.into_bytes(),
        mode,
    )
}

/// The command line's token source wins over the site file's.
fn token_for(a: &UserDataArgs, site: &Site) -> anyhow::Result<Option<Secret>> {
    let env = a.token_env.as_deref().or(site.token_env.as_deref());
    let file = a.token_file.as_deref().or(site.token_file.as_deref());
    match (env, file) {
        (Some(var), _) => Secret::from_env(var).map(Some),
        (None, Some(f)) => Secret::from_file(f).map(Some),
        (None, None) => Ok(None),
    }
}
