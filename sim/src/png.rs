//! PNG versions of the SVG charts, rendered with resvg so that both show the same picture.
//! Text needs a sans-serif font from the system (fontconfig's directories); without one
//! the chart is drawn without its labels and a warning is printed once.

use std::sync::{Arc, OnceLock};

/// The system's fonts, loaded once per process (loading scans the font directories).
fn fonts() -> Arc<resvg::usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = resvg::usvg::fontdb::Database::new();
            db.load_system_fonts();
            // fontdb maps `sans-serif` to Arial, which Linux systems rarely have: map it to
            // a common free sans-serif family that is present, else to any face.
            let families: Vec<String> = db
                .faces()
                .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
                .collect();
            let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"];
            match preferred
                .iter()
                .find(|p| families.iter().any(|f| f == *p))
                .map(|p| (*p).to_owned())
                .or_else(|| families.first().cloned())
            {
                Some(family) => db.set_sans_serif_family(family),
                None => eprintln!(
                    "warning: no system fonts found; PNG charts are drawn without text \
                     (install a font, e.g. Debian's fonts-dejavu-core)"
                ),
            }
            Arc::new(db)
        })
        .clone()
}

/// Why a chart could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChartError {
    /// The SVG did not parse.
    #[error("chart SVG: {0}")]
    Svg(#[from] resvg::usvg::Error),
    /// The SVG's size has no pixels.
    #[error("chart size {0}x{1} has no pixels")]
    Size(u32, u32),
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Png(String),
}

/// Renders `svg` (one of our charts) to PNG bytes.
pub(crate) fn render(svg: &str) -> Result<Vec<u8>, ChartError> {
    let opts = resvg::usvg::Options {
        fontdb: fonts(),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &opts)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| ChartError::Size(size.width(), size.height()))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| ChartError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_chart_as_png() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\">\
                   <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
                   <line x1=\"0\" y1=\"10\" x2=\"40\" y2=\"10\" stroke=\"black\"/></svg>";
        let png = super::render(svg).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 40);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 20);
        assert!(super::render("<svg").is_err());
    }
}
