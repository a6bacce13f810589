// adaptive_reduce.frag - pass 4 of the adaptive filter: per 16 x 16 tile sums of the energies (the only
// read-back; gpu_deconv/core/adaptive.py, pass_reduce and AdaptiveStats).
//
// One fragment per tile; it sums the (se, sq) block sums of pass 3 over its HALF x HALF half-resolution
// texels [o + t * HALF, min(o + (t + 1) * HALF, roi_end)), row by row (row partial sums, ascending x,
// then ascending rows, as the reference does). The region of interest (half-resolution texels) lets a
// tiled run count only a tile's interior. out = (sum se, sum sq, 0, 0), RGBA32F.
// Defines: HALF (texels per tile edge = block / 2).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
#define COLOUR 1
//@include common.glsl

uniform sampler2D u_d;
uniform vec2 u_d_inv;
uniform ivec2 u_roi_origin;
uniform ivec2 u_roi_end;

out vec4 o_sums;

void main() {
    ivec2 cell = ivec2(gl_FragCoord.xy);
    ivec2 p0 = u_roi_origin + cell * HALF;
    ivec2 p1 = min(p0 + HALF, u_roi_end);
    PRECISE vec2 total = vec2(0.0);
    for (int y = p0.y; y < p1.y; ++y) {
        PRECISE vec2 row = vec2(0.0);
        for (int x = p0.x; x < p1.x; ++x) {
            row += FETCH(u_d, ivec2(x, y), u_d_inv).gb;
        }
        total += row;
    }
    o_sums = vec4(total, 0.0, 0.0);
}
