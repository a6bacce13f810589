// adaptive_energy.frag - pass 3 of the adaptive filter: the local energy at half resolution, and 2x2
// block sums for the statistics (gpu_deconv/core/adaptive.py, pass_energy).
//
// One fragment per half-resolution texel q (ceil(w/2) x ceil(h/2)); e and q come from the EQ component
// pair of pass 2's last target (u_eq). With w = [1, 3, 3, 1] / 8 at full-resolution offsets -1..2 of 2q:
//
//     D(q)  = sum_{j ascending} w_j * (sum_{i ascending} w_i * e(mirror(2q.x + i - 1), mirror(2q.y + j - 1)))
//     se(q) = sum of e over the block 2q + {0,1}^2 (pixels inside the region only), order (0,0) (1,0) (0,1) (1,1)
//     sq(q) = the same for q
//
// out = (D, se, sq, 0) into an RGBA32F texture. The weights are binary fractions (exact), the products
// and sums are `precise`, so the result is the NumPy reference's bit for bit. The 4x4 gather per four
// output pixels replaces a full-resolution Gaussian window of two 19-tap passes (same quality,
// measured in core/adaptive.py's docstring).
// EQ_HALVES: pass 2 stored fp16 pairs in an RGBA32UI target (gpu_deconv/gl/adaptive.py, BandLayout);
// then (e, q) = unpackHalf2x16 of component EQ - exact, so the values are the same.
// Defines: EQ (the two components holding e and q, e.g. rg or ba; one component with EQ_HALVES),
// EQ_HALVES, MIRROR_PERIODIC (w or h < 2).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
#extension GL_ARB_shading_language_packing : enable
#define COLOUR 1
//@include common.glsl

#ifdef EQ_HALVES
uniform usampler2D u_eq;
#define EQ_AT(x, y) unpackHalf2x16(texelFetch(u_eq, ivec2(x, y), 0).EQ)
#else
uniform sampler2D u_eq;
#define EQ_AT(x, y) FETCH(u_eq, ivec2(x, y), u_eq_inv).EQ
#endif
uniform vec2 u_eq_inv;
uniform ivec2 u_region;

out vec4 o_d;

void main() {
    ivec2 q = ivec2(gl_FragCoord.xy);
    ivec2 b = 2 * q;
    int x0 = mirror_index(b.x - 1, u_region.x);
    int x1 = mirror_index(b.x, u_region.x);
    int x2 = mirror_index(b.x + 1, u_region.x);
    int x3 = mirror_index(b.x + 2, u_region.x);
    PRECISE float d = 0.0;
    PRECISE float se = 0.0;
    PRECISE float sq = 0.0;
    bool in_x = b.x + 1 < u_region.x;
    bool in_y = b.y + 1 < u_region.y;
    for (int j = 0; j < 4; ++j) {
        int y = mirror_index(b.y + j - 1, u_region.y);
        vec2 v0 = EQ_AT(x0, y);
        vec2 v1 = EQ_AT(x1, y);
        vec2 v2 = EQ_AT(x2, y);
        vec2 v3 = EQ_AT(x3, y);
        PRECISE float row = 0.125 * v0.x;
        row += 0.375 * v1.x;
        row += 0.375 * v2.x;
        row += 0.125 * v3.x;
        float wj = (j == 0 || j == 3) ? 0.125 : 0.375;
        d = j == 0 ? wj * row : d + wj * row;
        if (j == 1 || (j == 2 && in_y)) {
            se += v1.x;
            sq += v1.y;
            if (in_x) {
                se += v2.x;
                sq += v2.y;
            }
        }
    }
    o_d = vec4(d, se, sq, 0.0);
}
