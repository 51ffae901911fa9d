//! Turns the user-data arguments into a checked document: a ready file, or a
//! site rendered through the template with the token from its source.

use std::path::PathBuf;

use crate::cli::UserDataArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::log::info;
use crate::provider::renderer_for;
use crate::user_data::{self, Secret, Site, UserData, REFUSED};

pub fn resolve(a: &UserDataArgs, l: &LoadedDefinition, epoch: u64) -> anyhow::Result<UserData> {
    if a.token.is_some() {
        return Err(fail(Category::Usage, REFUSED));
    }
    let ud = match &a.user_data {
        Some(file) => UserData::load(file)?,
        None if a.site.is_some() || !a.site_values.is_empty() => {
            let site = Site::load(a.site.as_deref(), &a.site_values)?;
            let token = token_for(a, &site)?;
            let variant = l.variants().remove(0);
            let mut renderer = renderer_for(l, &variant, epoch)?;
            let text = user_data::render(&mut renderer, &site, token.as_ref())?;
            UserData::from_bytes(&rendered_label(&site), text.into_bytes())?
        }
        None => {
            return Err(fail(
                Category::Usage,
                "no user-data: give --user-data FILE, or --site FILE / --site-value name=... (with --token-env or --token-file) to render templates/user-data.tera",
            ))
        }
    };
    info!("user-data {} (sha256 {})", ud.path.display(), ud.sha256);
    Ok(ud)
}

/// The command line's token source wins over the site file's.
pub fn token_for(a: &UserDataArgs, site: &Site) -> anyhow::Result<Option<Secret>> {
    let env = a.token_env.as_deref().or(site.token_env.as_deref());
    let file = a.token_file.as_deref().or(site.token_file.as_deref());
    match (env, file) {
        (Some(var), _) => Secret::from_env(var).map(Some),
        (None, Some(f)) => Secret::from_file(f).map(Some),
        (None, None) => Ok(None),
    }
}

pub fn rendered_label(site: &Site) -> PathBuf {
    PathBuf::from(format!("templates/user-data.tera (site {})", site.name))
}
