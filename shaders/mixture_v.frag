// mixture_v.frag - V pass of a mixture stage: vertical blur of every H_k fused with the combine.
//
//     out(x, y) = d0 * base(x, y) + sum_{k = 1..K, in order} d_k * sum_{j = -r_k..r_k, ascending}
//                                                               g_k[j] * H_k(x, mirror(y + j))
//
// evaluated as acc = d0*base; acc += d_k * s_k - the order of gpu_deconv/core/reference.py, so fp32 output
// matches it to rounding. base is always the chain's input; H_k comes from mixture_h.frag.
// Fetches per pixel: 1 + sum_k (2 r_k + 1) (levels live in separate textures, so nothing is shared).
//
// Then, optionally (ENCODE_SRGB), the colour channels go through linear_to_srgb (srgb.glsl) for 8/16-bit
// targets, and alpha (HAS_ALPHA) is copied from base's centre texel - never filtered, never rounded
// through fp16 - so it comes out bit-exact. Unorm targets clamp and quantise in the fixed-function
// output stage.
//
// Destination addressing: the pass may draw into a caller's framebuffer at a viewport offset; the texel
// read for a fragment is gl_FragCoord - u_origin, so the region lands wherever the viewport puts it.
//
// Taps as in mixture_h.frag (u_taps[(k / 4) * 31 + j + 15][k % 4]); generic build: per-level loops
// j = -u_rad[k]..u_rad[k]; SPECIALIZED build: unrolled body pasted at the BODY marker, zero taps skipped;
// with PACKED H targets (see mixture_h.frag) the body fetches each packed texel once per offset
// (FETCH_T) and spreads its components over the levels' channel sums, each channel still summed over
// ascending j - so packing changes the number of fetches, not the arithmetic.
// Defines: LEVELS, COLOUR, HAS_ALPHA, ENCODE_SRGB, SPECIALIZED, PACKED, MIRROR_PERIODIC (image shorter
// than R), EMULATE_FP16 + STORE_FP16 (round a non-final stage's output to fp16 in the shader).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl
//@include srgb.glsl

uniform sampler2D u_base;
uniform vec2 u_base_inv;
uniform sampler2D u_h0;
#if LEVELS > 1
uniform sampler2D u_h1;
#endif
#if LEVELS > 2
uniform sampler2D u_h2;
#endif
#if LEVELS > 3
uniform sampler2D u_h3;
#endif
#if LEVELS > 4
uniform sampler2D u_h4;
#endif
#if LEVELS > 5
uniform sampler2D u_h5;
#endif
#if LEVELS > 6
uniform sampler2D u_h6;
#endif
uniform vec2 u_h_inv;
uniform ivec2 u_region;
uniform ivec2 u_origin;
uniform vec4 u_taps[62];
uniform float u_d[8];
#ifndef SPECIALIZED
uniform int u_rad[7];
#endif

out vec4 o_color;

// texel of H_k at vertical offset j from c (FETCH_T: the whole RGBA texel, for packed targets)
#define FETCH_T(h, j) FETCH(h, ivec2(c.x, mirror_index(c.y + (j), u_region.y)), u_h_inv)
#define FETCH_Y(h, j) CSW(FETCH_T(h, j))

#ifndef SPECIALIZED
// (one line: GLSL 3.30 has no line continuation)
#define LEVEL_SUM(k, h, slot, comp) { PRECISE COL s = COL(0.0); for (int j = -u_rad[k]; j <= u_rad[k]; ++j) s += u_taps[j + slot].comp * FETCH_Y(h, j); acc += u_d[k + 1] * s; }
#endif

void main() {
    ivec2 c = ivec2(gl_FragCoord.xy) - u_origin;
    vec4 b = FETCH(u_base, c, u_base_inv);
    PRECISE COL acc = u_d[0] * CSW(b);
#ifdef SPECIALIZED
    //@body
#else
    LEVEL_SUM(0, u_h0, 15, x)
#if LEVELS > 1
    LEVEL_SUM(1, u_h1, 15, y)
#endif
#if LEVELS > 2
    LEVEL_SUM(2, u_h2, 15, z)
#endif
#if LEVELS > 3
    LEVEL_SUM(3, u_h3, 15, w)
#endif
#if LEVELS > 4
    LEVEL_SUM(4, u_h4, 46, x)
#endif
#if LEVELS > 5
    LEVEL_SUM(5, u_h5, 46, y)
#endif
#if LEVELS > 6
    LEVEL_SUM(6, u_h6, 46, z)
#endif
#endif
#ifdef ENCODE_SRGB
    acc = linear_to_srgb(acc);
#endif
#ifdef STORE_FP16
    acc = STORE(acc);  // a non-final stage's output of precision 16 (see common.glsl)
#endif
#ifdef HAS_ALPHA
    o_color = COL_TO_VEC4(acc, b.a);
#else
    o_color = COL_TO_VEC4(acc, 1.0);
#endif
}
