//! Renders `templates/user-data.tera` for a site, with the definition's
//! variables, the site's values and the token.

use super::{Secret, Site};
use crate::render::Renderer;

pub fn render(
    renderer: &mut Renderer,
    site: &Site,
    token: Option<&Secret>,
) -> anyhow::Result<String> {
    renderer.insert("site", site)?;
    renderer.insert("token", &token.map(Secret::expose))?;
    let text = renderer.render_named("user-data.tera");
    // The token leaves the renderer's context as soon as it is used.
    renderer.insert("token", &None::<&str>)?;
    text
}
