//! Image files for `predict`: decoding PNG (with the `png` crate), JPEG (through the data
//! crate's decoder) and binary or ASCII PGM, their size checked from the header before any
//! pixel is decoded, transparency composited on the background that keeps the strokes
//! visible, conversion to the model's channels, resizing by area averaging to the model's
//! input size.

use std::path::Path;

use crate::error::{CliError, Result};

/// An image as floats in `[0, 1]`, channel-major (`[channels, height, width]`).
#[derive(Debug, Clone)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// The default of `predict --max-megapixels`.
pub const DEFAULT_MAX_MEGAPIXELS: f64 = 64.0;

/// Reads a PNG, JPEG or PGM file (recognised by content, not by name) of at most
/// `max_pixels` pixels.
pub fn read(path: &Path, max_pixels: usize) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    if bytes.starts_with(b"\x89PNG") {
        decode_png(&bytes, max_pixels).map_err(|e| CliError::file(path, e))
    } else if is_jpeg(&bytes) {
        decode_jpeg(&bytes, max_pixels).map_err(|e| CliError::file(path, e))
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(&bytes, max_pixels).map_err(|e| CliError::file(path, e))
    } else {
        Err(CliError::file(path, "not a PNG, JPEG or PGM image"))
    }
}

/// Refuses images above `max_pixels` before their pixels are decoded.
fn check_size(width: usize, height: usize, max_pixels: usize) -> std::result::Result<(), String> {
    let pixels = width.saturating_mul(height);
    if pixels > max_pixels {
        return Err(format!(
            "{width}x{height} pixels ({:.1} megapixels) is above the limit of {:.1} megapixels (raise it with --max-megapixels)",
            pixels as f64 / 1e6,
            max_pixels as f64 / 1e6
        ));
    }
    Ok(())
}

fn decode_png(bytes: &[u8], max_pixels: usize) -> std::result::Result<Image, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("invalid PNG: {e}"))?;
    let header = reader.info();
    check_size(header.width as usize, header.height as usize, max_pixels)?;
    let size = reader.output_buffer_size().ok_or("PNG is too large")?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("invalid PNG: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src_channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("indexed PNG could not be expanded".into()),
    };
    let color = if src_channels >= 3 { 3 } else { 1 };
    let pixel = |x: usize, y: usize| &buf[y * info.line_size + x * src_channels..][..src_channels];
    let alpha_of = |px: &[u8]| match src_channels {
        2 => px[1] as f32 / 255.0,
        4 => px[3] as f32 / 255.0,
        _ => 1.0,
    };
    // Transparent pixels are composited over the background that contrasts with the visible
    // strokes: black under bright ink (a white digit on a transparent background), white
    // under dark ink.
    let (mut ink, mut weight) = (0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let px = pixel(x, y);
            let alpha = alpha_of(px) as f64;
            let brightness =
                px[..color].iter().map(|&v| v as f64).sum::<f64>() / (255.0 * color as f64);
            ink += alpha * brightness;
            weight += alpha;
        }
    }
    let background = if weight > 0.0 && ink / weight > 0.5 {
        0.0
    } else {
        1.0
    };
    let mut data = vec![0f32; color * h * w];
    for y in 0..h {
        for x in 0..w {
            let px = pixel(x, y);
            let alpha = alpha_of(px);
            for c in 0..color {
                let v = px[c] as f32 / 255.0;
                data[c * h * w + y * w + x] = v * alpha + background * (1.0 - alpha);
            }
        }
    }
    Ok(Image {
        channels: color,
        height: h,
        width: w,
        data,
    })
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, 0xd8, 0xff])
}

/// Reads a PNG or JPEG file of at most `max_pixels` pixels (checked from its header) as
/// encoded bytes, for decoders that convert it themselves.
pub fn read_encoded(path: &Path, max_pixels: usize) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    let (width, height) =
        ferrograd_data::image_dimensions(&bytes).map_err(|e| CliError::file(path, e))?;
    check_size(width, height, max_pixels).map_err(|e| CliError::file(path, e))?;
    Ok(bytes)
}

fn decode_jpeg(bytes: &[u8], max_pixels: usize) -> std::result::Result<Image, String> {
    let (width, height) = ferrograd_data::image_dimensions(bytes)?;
    check_size(width, height, max_pixels)?;
    let img = ferrograd_data::decode_image(bytes)?;
    Ok(Image {
        channels: img.channels,
        height: img.height,
        width: img.width,
        data: img.pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
    })
}

fn decode_pgm(bytes: &[u8], max_pixels: usize) -> std::result::Result<Image, String> {
    // Header: magic, width, height, maxval, separated by whitespace; '#' starts a comment.
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'#') {
            if bytes[i] == b'#' {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err("truncated or malformed PGM header".into());
        }
        let v: usize = std::str::from_utf8(&bytes[start..i])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PGM header number")?;
        fields.push(v);
    }
    let (w, h, maxval) = (fields[0], fields[1], fields[2]);
    if w == 0 || h == 0 || maxval == 0 || maxval > 65535 {
        return Err(format!(
            "unsupported PGM size {w}x{h} with maximum {maxval}"
        ));
    }
    check_size(w, h, max_pixels)?;
    let n = w * h;
    let values: Vec<usize> = if bytes.starts_with(b"P5") {
        let data = &bytes[(i + 1).min(bytes.len())..];
        let bpp = if maxval > 255 { 2 } else { 1 };
        if data.len() < n * bpp {
            return Err(format!(
                "truncated PGM data: {} of {} bytes",
                data.len(),
                n * bpp
            ));
        }
        (0..n)
            .map(|k| {
                if bpp == 1 {
                    data[k] as usize
                } else {
                    (data[2 * k] as usize) << 8 | data[2 * k + 1] as usize
                }
            })
            .collect()
    } else {
        let text =
            std::str::from_utf8(&bytes[i..]).map_err(|_| "ASCII PGM contains non-text bytes")?;
        let v: Vec<usize> = text
            .split_ascii_whitespace()
            .take(n)
            .map(|t| t.parse().map_err(|_| format!("bad PGM value {t:?}")))
            .collect::<std::result::Result<_, _>>()?;
        if v.len() < n {
            return Err(format!("truncated PGM data: {} of {n} values", v.len()));
        }
        v
    };
    Ok(Image {
        channels: 1,
        height: h,
        width: w,
        data: values
            .iter()
            .map(|&v| v.min(maxval) as f32 / maxval as f32)
            .collect(),
    })
}

impl Image {
    /// Converts to `channels` (grey <-> RGB by averaging or repeating).
    pub fn with_channels(self, channels: usize) -> Image {
        if channels == self.channels {
            return self;
        }
        let plane = self.height * self.width;
        let data = if channels == 1 {
            (0..plane)
                .map(|p| {
                    (0..self.channels)
                        .map(|c| self.data[c * plane + p])
                        .sum::<f32>()
                        / self.channels as f32
                })
                .collect()
        } else {
            (0..channels)
                .flat_map(|_| self.data[..plane].iter().copied())
                .collect()
        };
        Image {
            channels,
            data,
            ..self
        }
    }

    /// Resizes by averaging the source area under each target pixel (box filter).
    pub fn resize(&self, height: usize, width: usize) -> Image {
        let (sh, sw) = (
            self.height as f32 / height as f32,
            self.width as f32 / width as f32,
        );
        let mut data = vec![0f32; self.channels * height * width];
        for c in 0..self.channels {
            let src = &self.data[c * self.height * self.width..(c + 1) * self.height * self.width];
            for ty in 0..height {
                let (y0, y1) = (ty as f32 * sh, (ty + 1) as f32 * sh);
                for tx in 0..width {
                    let (x0, x1) = (tx as f32 * sw, (tx + 1) as f32 * sw);
                    let (mut sum, mut area) = (0f32, 0f32);
                    for sy in y0.floor() as usize..(y1.ceil() as usize).min(self.height) {
                        let wy = (y1.min(sy as f32 + 1.0) - y0.max(sy as f32)).max(0.0);
                        for sx in x0.floor() as usize..(x1.ceil() as usize).min(self.width) {
                            let wx = (x1.min(sx as f32 + 1.0) - x0.max(sx as f32)).max(0.0);
                            sum += src[sy * self.width + sx] * wx * wy;
                            area += wx * wy;
                        }
                    }
                    data[c * height * width + ty * width + tx] =
                        if area > 0.0 { sum / area } else { 0.0 };
                }
            }
        }
        Image {
            channels: self.channels,
            height,
            width,
            data,
        }
    }

    /// Mean brightness in `[0, 1]`.
    pub fn mean(&self) -> f32 {
        self.data.iter().sum::<f32>() / self.data.len().max(1) as f32
    }

    /// `1 - v` for every value.
    pub fn inverted(mut self) -> Image {
        for v in &mut self.data {
            *v = 1.0 - *v;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_pgm_any(bytes: &[u8]) -> std::result::Result<Image, String> {
        decode_pgm(bytes, usize::MAX)
    }

    #[test]
    fn sizes_are_checked_before_decoding() {
        // A header that claims 30000x30000 pixels, with no pixel data behind it.
        let err = decode_pgm(b"P5 30000 30000 255\n", 64_000_000).unwrap_err();
        assert!(
            err.contains("900.0 megapixels") && err.contains("--max-megapixels"),
            "{err}"
        );
        let png = ferrograd_plot::encode_png_rgb(&[0; 3 * 4 * 3], 4, 3).unwrap();
        assert!(
            decode_png(&png, 11)
                .unwrap_err()
                .contains("above the limit")
        );
        assert!(decode_png(&png, 12).is_ok());
    }

    /// RGBA pixels as a PNG.
    fn rgba_png(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(rgba).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn transparency_keeps_the_strokes_visible() {
        // A white stroke on a transparent background becomes white on black ...
        let white_on_clear = rgba_png(&[255, 255, 255, 255, 0, 0, 0, 0], 2, 1);
        let img = decode_png(&white_on_clear, usize::MAX)
            .unwrap()
            .with_channels(1);
        assert_eq!(img.data, vec![1.0, 0.0]);
        // ... and a black stroke on a transparent background black on white.
        let black_on_clear = rgba_png(&[0, 0, 0, 255, 255, 255, 255, 0], 2, 1);
        let img = decode_png(&black_on_clear, usize::MAX)
            .unwrap()
            .with_channels(1);
        assert_eq!(img.data, vec![0.0, 1.0]);
    }

    /// Found by fuzzing: a 253 x 4160749571 PNG header made the decoder's buffer allocation
    /// abort the process; the size is refused before anything is allocated. (The header's
    /// checksum is corrected here: fuzzing builds of the `png` crate skip checksums.)
    #[test]
    fn a_png_header_of_billions_of_pixels_is_refused() {
        const PNG: [u8; 96] = [
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
            0x44, 0x52, 0x00, 0x00, 0x00, 0xfd, 0xf8, 0x00, 0x00, 0x03, 0x08, 0x02, 0x00, 0x00,
            0x00, 0xfa, 0xe1, 0xff, 0x40, 0x00, 0x00, 0x00, 0x27, 0x49, 0x44, 0x41, 0x54, 0x78,
            0x9c, 0x63, 0x60, 0x70, 0xeb, 0xd1, 0xc8, 0x00, 0x00, 0x00, 0x61, 0x0e, 0x03, 0x6f,
            0xf0, 0x4c, 0xd3, 0xea, 0x83, 0xb1, 0x8b, 0x5f, 0x32, 0x48, 0x25, 0x2c, 0x73, 0xea,
            0x38, 0x97, 0xb5, 0xe1, 0x1b, 0x00, 0xac, 0x35, 0x0c, 0xfa, 0x46, 0x33, 0xe6, 0x0a,
            0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ];
        let err = decode_png(&PNG, 64_000_000).unwrap_err();
        assert!(err.contains("253x4160749571 pixels"), "{err}");
    }

    #[test]
    fn pgm_ascii_and_binary() {
        let img = decode_pgm_any(b"P2\n# c\n2 1\n255\n0 255\n").unwrap();
        assert_eq!(img.data, vec![0.0, 1.0]);
        let img = decode_pgm_any(b"P5 2 2 255\n\x00\x80\xff\x00").unwrap();
        assert_eq!((img.width, img.height), (2, 2));
        assert!(
            decode_pgm_any(b"P5 4 4 255\n\x00")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(decode_pgm_any(b"P5 4").is_err());
    }

    #[test]
    fn resize_averages_areas() {
        let img = Image {
            channels: 1,
            height: 2,
            width: 2,
            data: vec![0.0, 1.0, 1.0, 0.0],
        };
        assert_eq!(img.resize(1, 1).data, vec![0.5]);
        let up = img.resize(4, 4);
        assert_eq!(up.data[0], 0.0);
        assert_eq!(up.data[3], 1.0);
    }

    #[test]
    fn png_round_trip() {
        let png = ferrograd_plot::encode_png_rgb(&[255, 0, 0, 0, 0, 255], 2, 1).unwrap();
        let img = decode_png(&png, usize::MAX).unwrap();
        assert_eq!((img.channels, img.width), (3, 2));
        assert_eq!(img.data[0], 1.0);
        assert_eq!(img.with_channels(1).data, vec![1.0 / 3.0, 1.0 / 3.0]);
    }
}
