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
        // Non-negative here, so truncation is floor (and avoids a libm call).
        let x0 = x as usize;
        let y0 = y as usize;
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
        if self.width < width || self.height < height {
            return self.resize_bilinear(width, height);
        }
        if self.width.is_multiple_of(width) && self.height.is_multiple_of(height) {
            return self.block_average(self.width / width, self.height / height);
        }
        let wx = area_weights(self.width, width);
        let wy = area_weights(self.height, height);
        // Rows first (each output column is a short weighted sum of source columns)...
        let mut tmp = Plane::new(width, self.height);
        for y in 0..self.height {
            let row = &self.data[y * self.width..(y + 1) * self.width];
            for (x, (start, w)) in wx.iter().enumerate() {
                tmp.data[y * width + x] = w.iter().zip(&row[*start..]).map(|(a, b)| a * b).sum();
            }
        }
        // ...then columns, whole rows at a time.
        let mut out = Plane::new(width, height);
        for (y, (start, w)) in wy.iter().enumerate() {
            let dst = &mut out.data[y * width..(y + 1) * width];
            for (k, wk) in w.iter().enumerate() {
                let src = &tmp.data[(start + k) * width..(start + k + 1) * width];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += wk * s;
                }
            }
        }
        out
    }

    /// Average of fx x fy blocks (an exact area resize by integer factors).
    fn block_average(&self, fx: usize, fy: usize) -> Plane {
        let (w, h) = (self.width / fx, self.height / fy);
        let mut out = Plane::new(w, h);
        for y in 0..h {
            let dst = &mut out.data[y * w..(y + 1) * w];
            for k in 0..fy {
                let src = &self.data[(y * fy + k) * self.width..(y * fy + k + 1) * self.width];
                for (d, chunk) in dst.iter_mut().zip(src.chunks_exact(fx)) {
                    *d += chunk.iter().sum::<f32>();
                }
            }
            let n = 1.0 / (fx * fy) as f32;
            dst.iter_mut().for_each(|v| *v *= n);
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
        let radius = (3.0 * sigma).ceil() as usize;
        let kernel: Vec<f32> = {
            let k: Vec<f32> = (0..=2 * radius)
                .map(|i| {
                    let d = i as f32 - radius as f32;
                    (-(d * d) / (2.0 * sigma * sigma)).exp()
                })
                .collect();
            let s: f32 = k.iter().sum();
            k.into_iter().map(|v| v / s).collect()
        };
        let (w, h) = (self.width, self.height);
        // Rows: pad each row by edge replication, then a plain dot product per output.
        let mut tmp = Plane::new(w, h);
        let mut padded = vec![0.0f32; w + 2 * radius];
        for y in 0..h {
            let row = &self.data[y * w..(y + 1) * w];
            padded[..radius].fill(row[0]);
            padded[radius..radius + w].copy_from_slice(row);
            padded[radius + w..].fill(row[w - 1]);
            for x in 0..w {
                tmp.data[y * w + x] = padded[x..x + kernel.len()]
                    .iter()
                    .zip(&kernel)
                    .map(|(a, b)| a * b)
                    .sum();
            }
        }
        // Columns: accumulate whole rows at a time (contiguous, vectorisable).
        let mut out = Plane::new(w, h);
        for y in 0..h {
            let dst = &mut out.data[y * w..(y + 1) * w];
            for (k, kv) in kernel.iter().enumerate() {
                let sy = (y + k).saturating_sub(radius).min(h - 1);
                let src = &tmp.data[sy * w..(sy + 1) * w];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += kv * s;
                }
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

    /// Minimum filter over a (2r+1)^2 window (erosion of a 0/1 mask); outside counts as 0.
    pub fn erode(&self, r: usize) -> Plane {
        let (w, h) = (self.width, self.height);
        let mut tmp = Plane::new(w, h);
        for y in 0..h {
            let row = &self.data[y * w..(y + 1) * w];
            for x in 0..w {
                tmp.data[y * w + x] = if x < r || x + r >= w {
                    0.0
                } else {
                    row[x - r..=x + r].iter().copied().fold(f32::INFINITY, f32::min)
                };
            }
        }
        let mut out = Plane::new(w, h);
        for y in r..h.saturating_sub(r) {
            let dst = &mut out.data[y * w..(y + 1) * w];
            dst.copy_from_slice(&tmp.data[(y - r) * w..(y - r + 1) * w]);
            for k in y - r + 1..=y + r {
                for (d, s) in dst.iter_mut().zip(&tmp.data[k * w..(k + 1) * w]) {
                    *d = d.min(*s);
                }
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

/// For each of `dst` output samples: the first source index and the weights of the source
/// samples it averages (box filter of width src/dst, weights summing to 1).
fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let (a, b) = (i as f32 * scale, (i + 1) as f32 * scale);
            let start = a.floor() as usize;
            let end = (b.ceil() as usize).min(src);
            let w = (start..end)
                .map(|j| ((j + 1) as f32).min(b) - (j as f32).max(a))
                .map(|v| v.max(0.0) / scale)
                .collect();
            (start, w)
        })
        .collect()
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
    fn block_average_equals_general_area_resize() {
        let p = Plane::from_fn(40, 30, |x, y| ((x * 13 + y * 7) % 19) as f32);
        let fast = p.resize_area(20, 15);
        let wx = area_weights(40, 20);
        let wy = area_weights(30, 15);
        for (y, (y0, wyv)) in wy.iter().enumerate() {
            for (x, (x0, wxv)) in wx.iter().enumerate() {
                let mut v = 0.0;
                for (j, wj) in wyv.iter().enumerate() {
                    for (i, wi) in wxv.iter().enumerate() {
                        v += wj * wi * p.get(x0 + i, y0 + j);
                    }
                }
                assert!((fast.get(x, y) - v).abs() < 1e-4);
            }
        }
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
