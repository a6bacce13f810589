// mixture_h.frag - H pass of a mixture stage: every level's horizontal blur from ONE fetch loop (MRT).
//
// A stage (gpu_deconv/core/plan.py) is  out = d0*base + sum_k d_k (g_k (x) g_k) * src,  k = 1..K <= 7,
// each g_k a symmetric odd 1D kernel of radius r_k <= 15. This pass writes, for all levels at once,
//
//     H_k(x, y) = sum_{i = -R..R, ascending} g_k[i] * src(mirror(x + i), y)       -> render target k-1
//
// with R = max r_k: the texel at offset i is fetched once and feeds every level whose kernel reaches
// it (fetch sharing; fetches are what a pass costs). The ascending order and separate multiply/add are
// the reference's (gpu_deconv/core/reference.py), so fp32 results match it to rounding and fp16 targets
// round the same values the reference rounds (on llvmpipe the output is bit-identical to it).
//
// PACKED: several levels' channels share the four components of one RGBA target: gray images put
// 4 levels in a texel, RGB ones e.g. L0.rgb + L1.r | L1.gb + L2.rg | ...; the V pass then fetches one
// texel for all of them. Each channel is still stored - and fp16-rounded - on its own, so the values
// are the same; only the texel they travel in changes.
//
// Taps: uniform vec4 u_taps[62]; tap i of level k (0-based) is u_taps[(k / 4) * 31 + i + 15][k % 4],
// zero outside the level's radius. Two builds of this file (gpu_deconv/gl/shaders.py):
//   * generic (no SPECIALIZED): loop i = -u_radius..u_radius, every level multiplies every fetched
//     texel (zero taps are exact no-ops: acc + 0*v == acc). One program per level count, reused for
//     any taps and radii - nothing recompiles when the blur changes;
//   * SPECIALIZED: the executor pastes an unrolled body for the stage's exact shape (radii and zero
//     taps) at the BODY marker: constant uniform indices, no loop, and no fetch or multiply-add for
//     taps that are zero in every level. Mesa llvmpipe evaluates both sides of every `if` and gathers
//     dynamically indexed uniforms lane by lane, so this is 1.3-1.6x faster there. With PACKED the
//     output declarations and writes are generated too (DECLS marker, end of the body).
//
// Defines: LEVELS (1..7), COLOUR (1 or 3), SPECIALIZED, PACKED (only with SPECIALIZED),
// MIRROR_PERIODIC (image narrower than R), EMULATE_FP16 (fp16 rounding in the shader, see common.glsl).
// Uniforms: u_src (chain input or previous stage output), u_src_inv (1 / its texture size),
// u_region (size of the processed region: the mirror period; textures may be larger).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_region;
uniform int u_radius;
uniform vec4 u_taps[62];

#ifdef PACKED
//@decls
#else
layout(location = 0) out COL o_h0;
#if LEVELS > 1
layout(location = 1) out COL o_h1;
#endif
#if LEVELS > 2
layout(location = 2) out COL o_h2;
#endif
#if LEVELS > 3
layout(location = 3) out COL o_h3;
#endif
#if LEVELS > 4
layout(location = 4) out COL o_h4;
#endif
#if LEVELS > 5
layout(location = 5) out COL o_h5;
#endif
#if LEVELS > 6
layout(location = 6) out COL o_h6;
#endif
#endif

// texel at horizontal offset i from c
#define FETCH_X(i) CSW(FETCH(u_src, ivec2(mirror_index(c.x + (i), u_region.x), c.y), u_src_inv))

void main() {
    ivec2 c = ivec2(gl_FragCoord.xy);
    PRECISE COL h0 = COL(0.0);
    PRECISE COL h1 = COL(0.0);
    PRECISE COL h2 = COL(0.0);
    PRECISE COL h3 = COL(0.0);
    PRECISE COL h4 = COL(0.0);
    PRECISE COL h5 = COL(0.0);
    PRECISE COL h6 = COL(0.0);
#ifdef SPECIALIZED
    COL v;
    //@body
#else
    for (int i = -u_radius; i <= u_radius; ++i) {
        COL v = FETCH_X(i);
        vec4 t = u_taps[i + 15];
        h0 += t.x * v;
#if LEVELS > 1
        h1 += t.y * v;
#endif
#if LEVELS > 2
        h2 += t.z * v;
#endif
#if LEVELS > 3
        h3 += t.w * v;
#endif
#if LEVELS > 4
        vec4 t2 = u_taps[i + 46];
        h4 += t2.x * v;
#endif
#if LEVELS > 5
        h5 += t2.y * v;
#endif
#if LEVELS > 6
        h6 += t2.z * v;
#endif
    }
#endif
#ifndef PACKED
    o_h0 = STORE(h0);
#if LEVELS > 1
    o_h1 = STORE(h1);
#endif
#if LEVELS > 2
    o_h2 = STORE(h2);
#endif
#if LEVELS > 3
    o_h3 = STORE(h3);
#endif
#if LEVELS > 4
    o_h4 = STORE(h4);
#endif
#if LEVELS > 5
    o_h5 = STORE(h5);
#endif
#if LEVELS > 6
    o_h6 = STORE(h6);
#endif
#endif
}
