//! Preparing a palm-centre crop for the coder: grey line channel, resampled to the working
//! side, brightness and contrast normalised.

use crate::plane::Plane;

/// Remove slow illumination (divide by a wide blur) and scale to zero mean, unit std.
/// The illumination is smooth, so it is estimated at a quarter of the resolution.
pub fn normalise_contrast(p: &Plane) -> Plane {
    normalise_contrast_with_scale(p).0
}

/// [`normalise_contrast`], also returning the relative contrast it divided out: the standard
/// deviation of the illumination-corrected image, in units of the local brightness (0.05 =
/// the skin's reflectance varies by 5% around its local mean). Multiplying a response of
/// the normalised image by it gives the response in those physical units.
pub fn normalise_contrast_with_scale(p: &Plane) -> (Plane, f32) {
    let (qw, qh) = ((p.width / 4).max(1), (p.height / 4).max(1));
    let bg = p
        .resize_area(qw, qh)
        .gaussian_blur(qw as f32 / 8.0)
        .resize_bilinear(p.width, p.height);
    let mut out = Plane::new(p.width, p.height);
    for i in 0..p.data.len() {
        out.data[i] = p.data[i] / bg.data[i].max(1e-3);
    }
    let (m, s) = out.mean_std();
    let s = s.max(1e-6);
    out.data.iter_mut().for_each(|v| *v = (*v - m) / s);
    (out, s)
}
