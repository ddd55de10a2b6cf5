//! Random augmentation of training images ([`Augment`]): shifts with a zero border (random
//! crops of a zero-padded image) and horizontal flips, drawn per sample from a seeded
//! generator, applied to the u8 pixels while a batch is converted to normalised floats.

use ferrograd_core::Rng;

use crate::dataset::DatasetKind;

/// How training images are randomly changed each epoch (torchvision's
/// `RandomCrop(size, padding=max_shift)` followed by `RandomHorizontalFlip()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Each image moves by a random whole number of pixels in `-max_shift..=max_shift` along
    /// each axis; the uncovered border is filled with zero pixels (a random crop of the image
    /// padded by `max_shift`). 0: no shift.
    pub max_shift: usize,
    /// Each image is mirrored left to right with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        max_shift: 0,
        flip: false,
    };

    /// The usual augmentation of a data set: random crops padded by 4 pixels and horizontal
    /// flips for CIFAR-10; shifts of up to 2 pixels, no flips, for the 28x28 MNIST and
    /// Fashion-MNIST images; up to 1 pixel for the 8x8 digits.
    ///
    /// ```
    /// use ferrograd_data::{Augment, DatasetKind};
    /// assert_eq!(Augment::standard(DatasetKind::Cifar10), Augment { max_shift: 4, flip: true });
    /// assert_eq!(Augment::standard(DatasetKind::Mnist), Augment { max_shift: 2, flip: false });
    /// ```
    pub fn standard(kind: DatasetKind) -> Augment {
        match kind {
            DatasetKind::Cifar10 => Augment {
                max_shift: 4,
                flip: true,
            },
            DatasetKind::Mnist | DatasetKind::FashionMnist => Augment {
                max_shift: 2,
                flip: false,
            },
            DatasetKind::Digits => Augment {
                max_shift: 1,
                flip: false,
            },
        }
    }

    /// Whether this changes nothing.
    pub fn is_none(&self) -> bool {
        *self == Augment::NONE
    }

    /// Draws one sample's transform: the shift `(dy, dx)` and whether to flip.
    pub(crate) fn draw(&self, rng: &mut Rng) -> Transform {
        let s = self.max_shift;
        let mut shift = || rng.below(2 * s + 1) as isize - s as isize;
        let (dy, dx) = if s > 0 { (shift(), shift()) } else { (0, 0) };
        let flip = self.flip && rng.below(2) == 1;
        Transform { dy, dx, flip }
    }
}

/// One sample's drawn augmentation: output pixel `(y, x)` is input pixel
/// `(y - dy, x' - dx)`, where `x' = width - 1 - x` when flipped and `x` otherwise; pixels
/// from outside the image are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transform {
    pub dy: isize,
    pub dx: isize,
    pub flip: bool,
}

impl Transform {
    /// Appends the transformed image (`channels` planes of `height x width` u8 pixels) to
    /// `out`, each pixel mapped through its channel's table.
    pub fn apply(
        &self,
        image: &[u8],
        [height, width]: [usize; 2],
        tables: &[[f32; 256]],
        out: &mut Vec<f32>,
    ) {
        let plane = height * width;
        for (pixels, table) in image.chunks_exact(plane.max(1)).zip(tables) {
            for y in 0..height {
                let sy = y as isize - self.dy;
                if !(0..height as isize).contains(&sy) {
                    out.extend(std::iter::repeat_n(table[0], width));
                    continue;
                }
                let row = &pixels[sy as usize * width..(sy as usize + 1) * width];
                out.extend((0..width).map(|x| {
                    let x = if self.flip { width - 1 - x } else { x };
                    let sx = x as isize - self.dx;
                    match usize::try_from(sx).ok().and_then(|sx| row.get(sx)) {
                        Some(&p) => table[usize::from(p)],
                        None => table[0],
                    }
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_table() -> [f32; 256] {
        std::array::from_fn(|p| p as f32)
    }

    #[test]
    fn shifts_fill_with_zero_and_flips_mirror() {
        // 1 channel, 2x3: [[1, 2, 3], [4, 5, 6]]
        let image = [1u8, 2, 3, 4, 5, 6];
        let table = [identity_table()];
        let run = |t: Transform| {
            let mut out = Vec::new();
            t.apply(&image, [2, 3], &table, &mut out);
            out
        };
        let none = Transform {
            dy: 0,
            dx: 0,
            flip: false,
        };
        assert_eq!(run(none), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            run(Transform { dx: 1, ..none }),
            vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]
        );
        assert_eq!(
            run(Transform { dy: -1, ..none }),
            vec![4.0, 5.0, 6.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            run(Transform { flip: true, ..none }),
            vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]
        );
        assert_eq!(
            run(Transform {
                dx: -1,
                flip: true,
                ..none
            }),
            vec![0.0, 3.0, 2.0, 0.0, 6.0, 5.0]
        );
    }

    #[test]
    fn draws_stay_within_the_shift_and_cover_it() {
        let aug = Augment {
            max_shift: 2,
            flip: true,
        };
        let mut rng = Rng::new(3);
        let draws: Vec<Transform> = (0..500).map(|_| aug.draw(&mut rng)).collect();
        assert!(draws.iter().all(|t| t.dx.abs() <= 2 && t.dy.abs() <= 2));
        for v in -2..=2 {
            assert!(draws.iter().any(|t| t.dx == v) && draws.iter().any(|t| t.dy == v));
        }
        let flips = draws.iter().filter(|t| t.flip).count();
        assert!((180..320).contains(&flips), "{flips}");
        assert!(Augment::NONE.is_none());
    }
}
