//! The QR code of a key URI, as an SVG image for the set-up page.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the key URI is too long for a QR code")]
pub struct QrError;

/// An SVG document (black modules on white, with the standard quiet zone) encoding `text`.
/// Error correction level M, what authenticator apps are tested against.
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rasterizes the SVG that `qr_svg` produces (a white rectangle and one path of unit
    /// squares, `M x y h 1 v 1 h -1 z`) so that an independent decoder can read it.
    fn rasterize(svg: &str) -> (usize, Vec<u8>) {
        let attr = |name: &str| -> &str {
            let start = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let end = start + svg[start..].find('"').unwrap();
            &svg[start..end]
        };
        let size: usize = attr("width").parse().unwrap();
        let path = attr("d");
        let mut pixels = vec![255u8; size * size];
        let numbers = |text: &str| -> Vec<i64> {
            text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect()
        };
        for command in path.split('M').filter(|s| !s.is_empty()) {
            let values = numbers(command);
            // x y h width v height h -width z
            let (x, y, w, h) = (values[0], values[1], values[2], values[3]);
            for row in y..y + h {
                for col in x..x + w {
                    pixels[row as usize * size + col as usize] = 0;
                }
            }
        }
        (size, pixels)
    }

    #[test]
    fn the_svg_decodes_back_to_the_uri() {
        let uri = "otpauth://totp/St.%20Mary%27s:jane%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=St.%20Mary%27s&algorithm=SHA1&digits=6&period=30";
        let svg = qr_svg(uri).unwrap();
        assert!(svg.contains("<svg"));
        let (size, pixels) = rasterize(&svg);
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(size, size, |x, y| pixels[y * size + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }

    #[test]
    fn text_beyond_qr_capacity_is_an_error() {
        assert_eq!(qr_svg(&"x".repeat(5000)), Err(QrError));
    }
}
