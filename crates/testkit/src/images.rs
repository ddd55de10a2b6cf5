//! Image files for tests of size limits: headers that claim more pixels than they hold.

/// A small baseline JPEG whose frame header is rewritten to claim `w`x`h` pixels, cut off
/// after its scan header (no image data): its size can be read from the header alone, and
/// decoding it fails.
pub fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::GrayImage::new(8, 8)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .expect("an 8x8 JPEG encodes");
    let marker = |jpeg: &[u8], m: u8| {
        jpeg.windows(2)
            .position(|p| p == [0xff, m])
            .expect("the encoder writes the marker")
    };
    let sof = marker(&jpeg, 0xc0);
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    let sos = marker(&jpeg, 0xda);
    let len = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    jpeg.truncate(sos + 2 + len);
    jpeg
}
