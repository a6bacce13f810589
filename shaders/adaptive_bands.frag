// adaptive_bands.frag - pass 2 of the adaptive filter (gpu_deconv/core/adaptive.py): the bands, the local
// energy and the noise band, from the horizontal sums of pass 1 (mixture_h.frag).
//
// Pass 1 wrote, per pixel, H_k = g_k *_x x for the K lowpasses and hx = [-1/4, 1/2, -1/4] *_x x as one
// more "level" (LEVELS = K + 1), packed into RGBA targets like the global filter's H pass. Here:
//
//     s_k = sum_{j ascending} g_k[j] H_k(x, mirror(y + j))          (G_k, and hh for the last level)
//     L_1 = x - s_1,   L_k = s_{k-1} - s_k,   hh = s_{K+1}
//     e = S * (L_a.r^2 + L_a.g^2 + L_a.b^2 + L_b.r^2 + ...),   q = S * (hh.r^2 + ...)    (in this order)
//
// The energy bands a < b are chosen by the uniform u_ew (1 for them, 0 for the others): e sums w_k L_k.c^2
// over every band and channel in order, which adds exactly the pair's squares (0 + x, 1 * x, + 0 * x are
// exact), so no program is recompiled when the pair changes (a sigma or noise slider crossing a threshold).
//
// (S = ENERGY_SCALE, a power of two) from the float32 values, then every output goes through STORE:
// the bands, e and q, packed channel after channel into the targets (e and q share one texel, so
// pass 3 fetches both at once). Precision 16 stores fp16 - native RGBA16F targets round there, with
// EMULATE_FP16 the shader rounds (common.glsl) and packs two rounded values per component of RGBA32UI
// targets (packHalf2x16, exact: see BandLayout in gpu_deconv/gl/adaptive.py) - which costs the bands
// nothing (they are small); the lowpass sums H_k stay fp32 (pass 1).
//
// The body (the vertical sums over the packed H texels, each fetched once per offset, and the band /
// energy / output lines) is generated for the basis' shape by gpu_deconv/gl/adaptive.py and pasted at
// the BODY marker; sampler and output declarations at DECLS. Taps as in mixture_h.frag.
// Defines: COLOUR (1 or 3), MIRROR_PERIODIC (image shorter than the lowpass radius), EMULATE_FP16,
// ENERGY_SCALE.
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
#extension GL_ARB_shading_language_packing : enable
//@include common.glsl

uniform sampler2D u_base;
uniform vec2 u_base_inv;
uniform vec2 u_h_inv;
uniform ivec2 u_region;
uniform vec4 u_taps[62];
uniform float u_ew[8];  // 1 for the two energy bands, 0 for the others (no recompile when they change)
//@decls

#define FETCH_T(h, j) FETCH(h, ivec2(c.x, mirror_index(c.y + (j), u_region.y)), u_h_inv)
#define FETCH_Y(h, j) CSW(FETCH_T(h, j))

void main() {
    ivec2 c = ivec2(gl_FragCoord.xy);
    COL x = CSW(FETCH(u_base, c, u_base_inv));
    vec4 f;
    //@body
}
