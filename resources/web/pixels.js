// Pixels as the app sees them (finetune_gui/core/data/images.py, load_rgb), computed in the page.
//
// The browser decodes a picture as Pillow does: Chromium's full-size JPEG decode equals Pillow's
// byte for byte (measured on baseline, progressive, 4:2:0, 4:2:2, 4:4:4 and grey JPEGs; the app
// does not use Pillow's reduced-scale JPEG draft for that reason), EXIF orientation is applied
// by createImageBitmap and transparency goes on white in app.js. The resize is the one thing the
// browser does differently: with a small model, 2-3 of 8 top-1 answers differed on 200x150
// images (measured) with the canvas's own. So the page resizes as Pillow does, in Pillow's own
// integer arithmetic: resize(BILINEAR, reducing_gap=2.0) = an integer box reduce followed by a
// separable bilinear pass. Works in the page and in Node (module.exports).
"use strict";

const FinetunePixels = (() => {
  // Pillow's fixed-point coefficients (Resample.c). Each single pass matches Pillow 13 exactly;
  // when both passes run, a few pixels can differ by 1 of 255 (Pillow 13 sometimes orders the
  // passes differently; measured on random images).
  const PRECISION_BITS = 32 - 8 - 2;

  // Pillow's float32 box and coefficient arithmetic (Resample.c, precompute_coeffs).
  function coefficients(inSize, in0, in1, outSize) {
    const f = Math.fround;
    const scale = f(f(in1) - f(in0)) / outSize;
    const filterscale = Math.max(scale, 1.0);
    const support = 1.0 * filterscale; // bilinear support is 1
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const prekk = new Float64Array(outSize * ksize);
    const weights = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = f(in0) + (xx + 0.5) * scale;
      let ww = 0.0;
      const ss = 1.0 / filterscale;
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      for (let x = 0; x < xmax; x++) {
        const t = Math.abs((x + xmin - center + 0.5) * ss);
        const w = t < 1.0 ? 1.0 - t : 0.0;
        weights[x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        prekk[xx * ksize + x] = ww !== 0.0 ? weights[x] / ww : weights[x];
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    const precision = PRECISION_BITS;
    const one = 2 ** precision;
    const kk = new Int32Array(outSize * ksize);
    prekk.forEach((w, i) => {
      kk[i] = w < 0 ? Math.trunc(-0.5 + w * one) : Math.trunc(0.5 + w * one);
    });
    return { ksize, bounds, kk, half: precision ? 2 ** (precision - 1) : 0, one };
  }

  function clip8(ss, one) {
    const v = Math.floor(ss / one);
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  // Separable bilinear resample of an RGB image (3 bytes a pixel) to outW x outH, box in floats.
  function resample(rgb, w, h, outW, outH, box) {
    const f = Math.fround;
    const [b0, b1, b2, b3] = box.map(f);
    const needH = outW !== w || b0 !== 0 || b2 !== outW;
    const needV = outH !== h || b1 !== 0 || b3 !== outH;
    const vert = coefficients(h, b1, b3, outH);
    let src = rgb, srcW = w, srcH = h;
    const first = vert.bounds[0];
    const last = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
    if (needH) {
      const hor = coefficients(w, b0, b2, outW);
      const rows = last - first;
      const tmp = new Uint8Array(outW * rows * 3);
      for (let yy = 0; yy < rows; yy++) {
        const line = (yy + first) * w * 3;
        for (let xx = 0; xx < outW; xx++) {
          const xmin = hor.bounds[xx * 2], xmax = hor.bounds[xx * 2 + 1];
          const k = xx * hor.ksize;
          let s0 = hor.half, s1 = hor.half, s2 = hor.half;
          for (let x = 0; x < xmax; x++) {
            const p = line + (x + xmin) * 3, c = hor.kk[k + x];
            s0 += src[p] * c; s1 += src[p + 1] * c; s2 += src[p + 2] * c;
          }
          const o = (yy * outW + xx) * 3;
          tmp[o] = clip8(s0, hor.one); tmp[o + 1] = clip8(s1, hor.one); tmp[o + 2] = clip8(s2, hor.one);
        }
      }
      for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= first;
      src = tmp; srcW = outW; srcH = rows;
    }
    if (!needV) return needH ? src : rgb.slice();
    const out = new Uint8Array(srcW * outH * 3);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = vert.bounds[yy * 2], ymax = vert.bounds[yy * 2 + 1];
      const k = yy * vert.ksize;
      for (let xx = 0; xx < srcW; xx++) {
        let s0 = vert.half, s1 = vert.half, s2 = vert.half;
        for (let y = 0; y < ymax; y++) {
          const p = ((y + ymin) * srcW + xx) * 3, c = vert.kk[k + y];
          s0 += src[p] * c; s1 += src[p + 1] * c; s2 += src[p + 2] * c;
        }
        const o = (yy * srcW + xx) * 3;
        out[o] = clip8(s0, vert.one); out[o + 1] = clip8(s1, vert.one); out[o + 2] = clip8(s2, vert.one);
      }
    }
    void srcH;
    return out;
  }

  // Pillow's Image.reduce((fx, fy)) (Reduce.c): block sums with a float32 reciprocal.
  function multiplier(count) {
    return Math.trunc(Math.fround(4294967296 / Math.fround(256 * count)));
  }

  function reduce(rgb, w, h, fx, fy) {
    const outW = Math.ceil(w / fx), outH = Math.ceil(h / fy);
    const out = new Uint8Array(outW * outH * 3);
    for (let y = 0; y < outH; y++) {
      const y0 = y * fy, y1 = Math.min(y0 + fy, h);
      for (let x = 0; x < outW; x++) {
        const x0 = x * fx, x1 = Math.min(x0 + fx, w);
        const count = (x1 - x0) * (y1 - y0);
        const mult = multiplier(count);
        const amend = Math.floor(count / 2);
        for (let c = 0; c < 3; c++) {
          let ss = amend;
          for (let yy = y0; yy < y1; yy++) {
            for (let xx = x0; xx < x1; xx++) ss += rgb[(yy * w + xx) * 3 + c];
          }
          out[(y * outW + x) * 3 + c] = Math.floor(((ss * mult) % 4294967296) / 16777216);
        }
      }
    }
    return { rgb: out, w: outW, h: outH };
  }

  // Image.resize((size, size), BILINEAR, reducing_gap=2.0) for an RGB image.
  function resize(rgb, w, h, size) {
    if (w === size && h === size) return rgb.slice();
    let box = [0, 0, w, h];
    const fx = Math.trunc(w / size / 2.0) || 1;
    const fy = Math.trunc(h / size / 2.0) || 1;
    if (fx > 1 || fy > 1) {
      const reduced = reduce(rgb, w, h, fx, fy);
      rgb = reduced.rgb;
      box = [0, 0, w / fx, h / fy];
      w = reduced.w;
      h = reduced.h;
    }
    return resample(rgb, w, h, size, size, box);
  }

  return { resize, reduce, resample };
})();

if (typeof module !== "undefined") module.exports = FinetunePixels;
