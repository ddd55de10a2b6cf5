//! Image files for `predict`: decoding PNG (with the `png` crate), JPEG (through the data
//! crate's decoder) and binary or ASCII PGM,
//! conversion to the model's channels, resizing by area averaging to the model's input size.

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

/// Reads a PNG, JPEG or PGM file (recognised by content, not by name).
pub fn read(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    if bytes.starts_with(b"\x89PNG") {
        decode_png(&bytes).map_err(|e| CliError::file(path, e))
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        decode_jpeg(&bytes).map_err(|e| CliError::file(path, e))
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(&bytes).map_err(|e| CliError::file(path, e))
    } else {
        Err(CliError::file(path, "not a PNG, JPEG or PGM image"))
    }
}

fn decode_png(bytes: &[u8]) -> std::result::Result<Image, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("invalid PNG: {e}"))?;
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
    let mut data = vec![0f32; color * h * w];
    for y in 0..h {
        for x in 0..w {
            let px = &buf[y * info.line_size + x * src_channels..][..src_channels];
            // Transparent pixels are composited over white.
            let alpha = match src_channels {
                2 => px[1] as f32 / 255.0,
                4 => px[3] as f32 / 255.0,
                _ => 1.0,
            };
            for c in 0..color {
                let v = px[c] as f32 / 255.0;
                data[c * h * w + y * w + x] = v * alpha + (1.0 - alpha);
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

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<Image, String> {
    let img = ferrograd_data::decode_image(bytes)?;
    Ok(Image {
        channels: img.channels,
        height: img.height,
        width: img.width,
        data: img.pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
    })
}

fn decode_pgm(bytes: &[u8]) -> std::result::Result<Image, String> {
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
    if w == 0 || h == 0 || maxval == 0 || maxval > 65535 || w.saturating_mul(h) > 1 << 28 {
        return Err(format!(
            "unsupported PGM size {w}x{h} with maximum {maxval}"
        ));
    }
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

    #[test]
    fn pgm_ascii_and_binary() {
        let img = decode_pgm(b"P2\n# c\n2 1\n255\n0 255\n").unwrap();
        assert_eq!(img.data, vec![0.0, 1.0]);
        let img = decode_pgm(b"P5 2 2 255\n\x00\x80\xff\x00").unwrap();
        assert_eq!((img.width, img.height), (2, 2));
        assert!(
            decode_pgm(b"P5 4 4 255\n\x00")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(decode_pgm(b"P5 4").is_err());
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
        let img = decode_png(&png).unwrap();
        assert_eq!((img.channels, img.width), (3, 2));
        assert_eq!(img.data[0], 1.0);
        assert_eq!(img.with_channels(1).data, vec![1.0 / 3.0, 1.0 / 3.0]);
    }
}
