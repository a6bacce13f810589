// atrous.frag - one axis of the a-trous ("with holes") lowpass [1/4, 1/2, 1/4] at dilation d.
//
//     out(p) = 1/4 * src(mirror(p - s)) + 1/2 * src(p) + 1/4 * src(mirror(p + s)),   s = u_step
//
// u_step = (d, 0) for the x pass and (0, d) for the y pass. Applied x then y at d = 1, 2, 4 this builds
// the lowpasses G1 = A_1 x, G2 = A_2 G1, G3 = A_4 G2 of gpu_deconv/core/stats.py (the comb basis); the
// d - 1 zero taps between the three non-zero ones are skipped, which is exact (acc + 0*v == acc), so
// each pass costs 3 fetches whatever the dilation. Ascending tap order and separate multiply/add as in
// the reference's convolve_axis; the statistics textures are always 32-bit float.
// Defines: COLOUR (1 or 3), MIRROR_PERIODIC (region shorter than d along the axis).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_region;
uniform ivec2 u_step;

out vec4 o_color;

ivec2 mirror2(ivec2 p) { return ivec2(mirror_index(p.x, u_region.x), mirror_index(p.y, u_region.y)); }

void main() {
    ivec2 c = ivec2(gl_FragCoord.xy);
    PRECISE COL acc = 0.25 * CSW(FETCH(u_src, mirror2(c - u_step), u_src_inv));
    acc += 0.5 * CSW(FETCH(u_src, c, u_src_inv));
    acc += 0.25 * CSW(FETCH(u_src, mirror2(c + u_step), u_src_inv));
    o_color = COL_TO_VEC4(acc, 0.0);
}
