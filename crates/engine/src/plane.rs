//! A single-channel `f32` raster, the working image type of the whole pipeline.

/// A row-major single-channel image with `f32` samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height],
        }
    }

    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                data.push(f(x, y));
            }
        }
        Self { width, height, data }
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: f32) {
        self.data[y * self.width + x] = v;
    }

    /// Sample clamped to the border.
    #[inline]
    pub fn get_clamped(&self, x: isize, y: isize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.get(x, y)
    }

    /// Bilinear sample at a real position; `None` outside the image.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> Option<f32> {
        if !(x >= 0.0 && y >= 0.0 && x <= (self.width - 1) as f32 && y <= (self.height - 1) as f32) {
            return None;
        }
        let x0 = x.floor() as usize;
        let y0 = y.floor() as usize;
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let fx = x - x0 as f32;
        let fy = y - y0 as f32;
        let a = self.get(x0, y0) * (1.0 - fx) + self.get(x1, y0) * fx;
        let b = self.get(x0, y1) * (1.0 - fx) + self.get(x1, y1) * fx;
        Some(a * (1.0 - fy) + b * fy)
    }

    /// Area-averaging resize (exact box filter for any scale factor); good for shrinking.
    pub fn resize_area(&self, width: usize, height: usize) -> Plane {
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        if sx < 1.0 || sy < 1.0 {
            return self.resize_bilinear(width, height);
        }
        // Separable: first along x, then along y.
        let mut tmp = Plane::new(width, self.height);
        for y in 0..self.height {
            let row = &self.data[y * self.width..(y + 1) * self.width];
            for x in 0..width {
                tmp.data[y * width + x] = box_integral(row, x as f32 * sx, (x + 1) as f32 * sx) / sx;
            }
        }
        let mut out = Plane::new(width, height);
        let mut col = vec![0.0f32; self.height];
        for x in 0..width {
            for (y, c) in col.iter_mut().enumerate() {
                *c = tmp.data[y * width + x];
            }
            for y in 0..height {
                out.data[y * width + x] = box_integral(&col, y as f32 * sy, (y + 1) as f32 * sy) / sy;
            }
        }
        out
    }

    pub fn resize_bilinear(&self, width: usize, height: usize) -> Plane {
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        Plane::from_fn(width, height, |x, y| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (self.width - 1) as f32);
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (self.height - 1) as f32);
            self.sample(fx, fy).unwrap_or(0.0)
        })
    }

    /// Separable Gaussian blur with border clamping.
    pub fn gaussian_blur(&self, sigma: f32) -> Plane {
        if sigma <= 0.0 {
            return self.clone();
        }
        let radius = (3.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = {
            let k: Vec<f32> = (-radius..=radius)
                .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
                .collect();
            let s: f32 = k.iter().sum();
            k.into_iter().map(|v| v / s).collect()
        };
        let (w, h) = (self.width as isize, self.height as isize);
        let mut tmp = Plane::new(self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, kv) in kernel.iter().enumerate() {
                    acc += kv * self.get_clamped(x + k as isize - radius, y);
                }
                tmp.data[(y * w + x) as usize] = acc;
            }
        }
        let mut out = Plane::new(self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, kv) in kernel.iter().enumerate() {
                    acc += kv * tmp.get_clamped(x, y + k as isize - radius);
                }
                out.data[(y * w + x) as usize] = acc;
            }
        }
        out
    }

    /// Rotate by `angle` radians about the centre, with scale factor `scale` (>1 zooms in);
    /// samples outside the source are clamped to the border.
    pub fn rotate_scale(&self, angle: f32, scale: f32) -> Plane {
        let (s, c) = angle.sin_cos();
        let cx = (self.width as f32 - 1.0) / 2.0;
        let cy = (self.height as f32 - 1.0) / 2.0;
        Plane::from_fn(self.width, self.height, |x, y| {
            let dx = (x as f32 - cx) / scale;
            let dy = (y as f32 - cy) / scale;
            let sx = (cx + c * dx - s * dy).clamp(0.0, (self.width - 1) as f32);
            let sy = (cy + s * dx + c * dy).clamp(0.0, (self.height - 1) as f32);
            self.sample(sx, sy).unwrap_or(0.0)
        })
    }

    /// Like [`Plane::rotate_scale`], but samples falling outside the source are 0: for masks.
    pub fn rotate_scale_mask(&self, angle: f32, scale: f32) -> Plane {
        let (s, c) = angle.sin_cos();
        let cx = (self.width as f32 - 1.0) / 2.0;
        let cy = (self.height as f32 - 1.0) / 2.0;
        Plane::from_fn(self.width, self.height, |x, y| {
            let dx = (x as f32 - cx) / scale;
            let dy = (y as f32 - cy) / scale;
            self.sample(cx + c * dx - s * dy, cy + s * dx + c * dy)
                .unwrap_or(0.0)
        })
    }

    /// Minimum filter over a (2r+1)^2 window (erosion of a 0/1 mask); outside counts as 0.
    pub fn erode(&self, r: usize) -> Plane {
        let r = r as isize;
        let (w, h) = (self.width as isize, self.height as isize);
        let mut tmp = Plane::new(self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                let mut m = f32::INFINITY;
                for k in -r..=r {
                    let xx = x + k;
                    m = m.min(if xx < 0 || xx >= w {
                        0.0
                    } else {
                        self.get(xx as usize, y as usize)
                    });
                }
                tmp.set(x as usize, y as usize, m);
            }
        }
        let mut out = Plane::new(self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                let mut m = f32::INFINITY;
                for k in -r..=r {
                    let yy = y + k;
                    m = m.min(if yy < 0 || yy >= h {
                        0.0
                    } else {
                        tmp.get(x as usize, yy as usize)
                    });
                }
                out.set(x as usize, y as usize, m);
            }
        }
        out
    }

    pub fn mean_std(&self) -> (f32, f32) {
        let n = self.data.len().max(1) as f64;
        let mean = self.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = self.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean as f32, var.sqrt() as f32)
    }

    /// Linear map of [lo, hi] to 0..=255 for viewing.
    pub fn to_u8_range(&self, lo: f32, hi: f32) -> Vec<u8> {
        let span = (hi - lo).max(1e-6);
        self.data
            .iter()
            .map(|&v| (((v - lo) / span) * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect()
    }

    /// Contrast-stretched 8-bit rendering (min..max) for viewing.
    pub fn to_u8_auto(&self) -> Vec<u8> {
        let lo = self.data.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = self.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.to_u8_range(lo, hi)
    }
}

/// Integral of a piecewise-constant row over [a, b).
fn box_integral(row: &[f32], a: f32, b: f32) -> f32 {
    let mut acc = 0.0;
    let mut i = a.floor() as usize;
    let end = (b.ceil() as usize).min(row.len());
    while i < end {
        let lo = (i as f32).max(a);
        let hi = ((i + 1) as f32).min(b);
        if hi > lo {
            acc += row[i] * (hi - lo);
        }
        i += 1;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_area_preserves_mean() {
        let p = Plane::from_fn(150, 150, |x, y| ((x * 7 + y * 13) % 17) as f32);
        let r = p.resize_area(64, 64);
        let (m0, _) = p.mean_std();
        let (m1, _) = r.mean_std();
        assert!((m0 - m1).abs() < 0.05, "{m0} vs {m1}");
    }

    #[test]
    fn blur_keeps_constant() {
        let p = Plane::from_fn(20, 10, |_, _| 3.0);
        let b = p.gaussian_blur(2.0);
        assert!(b.data.iter().all(|&v| (v - 3.0).abs() < 1e-4));
    }

    #[test]
    fn bilinear_sample_interpolates() {
        let p = Plane::from_fn(2, 2, |x, y| (x + 2 * y) as f32);
        assert_eq!(p.sample(0.5, 0.5), Some(1.5));
        assert_eq!(p.sample(-0.1, 0.0), None);
    }
}
